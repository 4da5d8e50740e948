"""The preference-labelling web app: human pairwise feedback for reward models and DPO.

A team lead imports response pairs (`importer`), writes versioned guidelines and adds labellers;
labellers compare two responses side by side in a browser (`routes_label`, left/right order
randomised per assignment and recorded); the lead watches agreement and labeller quality
(`stats`, built on `alignlab.feedback.agreement`) and exports `PreferencePair` JSONL (`export`).

Start it with `alignlab label serve --db labels.sqlite` (`cli.label_app`), or in Python with
`alignlab.labelling.app.create_app(LabellingSettings(db=...))`. FastAPI, SQLAlchemy, argon2 and
Jinja2 come with the `label` extra and are imported only when the app is built or a command runs.
"""
