"""The stages of one iteration, in pipeline order: redteam -> judge -> propose -> reflect -> sft.

Each stage reads records and writes one JSONL file (or, for SFT, one adapter folder) in the iteration's folder,
appending as it goes so that a crash resumes where it stopped.
"""
