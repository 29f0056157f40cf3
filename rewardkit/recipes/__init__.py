"""Recipes: multi-stage pipelines written as plain code over the methods (torchtune's recipes
over its components). A recipe chooses data slices, stages and reports; it owns no math.

  partial_finetune  the training settings the demo and the quality study share
  gram              GRAM: generative pre-training on unlabeled pairs → judge fine-tuning
  demo              the main job: zero-shot judge vs GRAM vs Bradley–Terry on held-out data
  quality           the quality study: what each part of the method buys, in and out of domain
"""
