"""The lab's simulated labellers as `feedback.labeller.Labeller`s, so any pairs stage can take them.

A simulated labeller scores responses against a lab `Sample`'s gold (`lab.labellers`), so the
adapter finds each item's sample by its prompt. Items whose prompt is no lab sample, or whose
responses are not single assistant turns, are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from alignlab.feedback.labeller import LabelResult, PairToLabel, Skipped
from alignlab.lab.labellers import Comparison, LabellerConfig, label
from alignlab.lab.sample import Sample


class SimulatedLabeller:
    """`Labeller` over one `LabellerConfig`; `samples` are the lab prompts the items may come from."""

    def __init__(self, config: LabellerConfig, samples: Iterable[Sample]):
        self.config = config
        self._samples = {s.messages: s for s in samples}

    @property
    def id(self) -> str:
        return self.config.id

    def label(self, items: Sequence[PairToLabel]) -> LabelResult:
        comparisons: list[Comparison] = []
        kept: list[PairToLabel] = []
        skipped: list[Skipped] = []
        for i, item in enumerate(items):
            sample = self._samples.get(item.prompt)
            if sample is None:
                skipped.append(Skipped(i, item.id, "prompt is not a lab sample"))
            elif len(item.first) != 1 or len(item.second) != 1:
                skipped.append(Skipped(i, item.id, "lab labellers compare single assistant turns"))
            else:
                comparisons.append(Comparison(sample, item.first[0].content, item.second[0].content))
                kept.append(item)
        pairs = label(self.config, comparisons)
        # Keep the items' ids where they have them, so labels from every source line up.
        pairs = [
            p if it.id is None else p.model_copy(update={"id": it.id})
            for p, it in zip(pairs, kept, strict=True)
        ]
        return LabelResult(pairs, skipped)
