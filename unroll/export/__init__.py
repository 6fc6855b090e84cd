"""A trained model that leaves unroll: ONNX export with the state as explicit tensors, int8,
checkpoint averaging (docs/export.md).

    from unroll.export.to_onnx import export_onnx       # checkpoint -> checked model.onnx + model.json
    from unroll.export.runtime import OnnxLM            # run it: NumPy + onnxruntime, no torch
    from unroll.export.average import average_checkpoints

One job per module: ``layout`` (the state as named tensors), ``graph`` (the model as a function of
tokens and state), ``exporters`` (torch.onnx's two exporters and which cell gets which), ``verify``
(onnxruntime against PyTorch), ``quantize`` (int8), ``sidecar`` (the JSON beside the model),
``runtime`` (onnxruntime sessions), ``to_onnx`` (all of it, atomically), ``average`` (checkpoint
averaging). Nothing is imported here, so ``runtime`` and ``sidecar`` load without torch.
"""
