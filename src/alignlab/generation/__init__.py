"""Sampling backends behind one `Generator` protocol (`base`): an in-process Hugging Face model (`hf`,
also the token-level API of RL rollouts) and an OpenAI-compatible endpoint (`http`).

vLLM is reached through its OpenAI-compatible server (`vllm serve`) and `http`: neither the GPU
nor the CPU build of vLLM installs beside this project's torch / transformers pins.
"""
