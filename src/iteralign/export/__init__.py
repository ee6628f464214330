"""Taking a run's result out of the run folder: the accepted model (``export.model``: a peft adapter, a merged
transformers folder, or a GGUF file, each with a model card) and the training data (``export.data``: ``datasets``
folders and JSONL in the layouts other trainers read). ``iteralign export`` and ``iteralign export-data`` call
these; every module imports its heavy libraries only when it runs.
"""
