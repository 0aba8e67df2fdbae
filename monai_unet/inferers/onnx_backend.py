"""Optional ONNX Runtime backend: export the network once per tile shape, run every tile through onnxruntime.

Needs the ``onnx`` extra (``onnx``, ``onnxruntime``). The export uses PyTorch's TorchScript-based exporter with a
dynamic batch axis; ONNX Runtime fuses BatchNorm into the convolutions itself. Runs in float32 on the CPU.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

__all__ = ["OnnxRuntimeNetwork"]


class OnnxRuntimeNetwork(nn.Module):
    """A network exported to ONNX and run by ONNX Runtime; call it like the network on tiles of one shape.

    Args:
        network: the PyTorch network (exported in eval mode; not modified).
        example: one tile ``(1, C_in, *tile)``; every later call must use the same ``*tile`` (any batch size).
        threads: ONNX Runtime intra-op threads; torch's thread count when ``None``.

    Raises:
        ImportError: when ``onnxruntime`` is not installed (install the ``onnx`` extra).
    """

    def __init__(self, network: nn.Module, example: torch.Tensor, threads: int | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("backend='onnxruntime' needs onnxruntime: pip install 'monai-unet[onnx]'.") from error
        was_training = network.training
        network.eval()
        buffer = io.BytesIO()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporter's deprecation notes are not the user's concern
                torch.onnx.export(
                    network,
                    (example.float().cpu(),),
                    buffer,
                    dynamo=False,
                    input_names=["tiles"],
                    output_names=["logits"],
                    dynamic_axes={"tiles": {0: "batch"}, "logits": {0: "batch"}},
                )
        finally:
            network.train(was_training)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.tile_shape = tuple(example.shape[2:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C_out, *out)`` float32 on the CPU for tiles ``x`` ``(N, C_in, *tile)``."""
        if tuple(x.shape[2:]) != self.tile_shape:
            raise ValueError(f"this ONNX export takes tiles of {self.tile_shape}, got {tuple(x.shape)}.")
        array = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {"tiles": array})[0])
