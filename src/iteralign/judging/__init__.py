"""The parts of the verdict judge (``judges.verdict``) and the evaluation judge, each usable on its own.

- ``response_class`` (+ ``cues``): refusal / compliance / partial from the whole reply, by rules;
- ``response_model``: where the rules are unsure, "does the reply give what was asked?" asked of a model;
- ``intent``: harmful / benign for prompts that declare no intent (a probe on the model's hidden state, or a closed
  question); ``classify_intent`` and ``fill_intents`` are the entry points for other code;
- ``honesty`` (+ ``factcheck``): claims an assistant cannot make, and factoid answers cross-checked;
- ``verdict``: the parts combined into a label, failure kind, reason and the parts that decided;
- ``label_scores``: closed questions read as probabilities over labels (``label_logprobs``, else an anchored line);
- ``eval_judge``: held-out ASR under the evaluation judge and the training filter, side by side.
"""
