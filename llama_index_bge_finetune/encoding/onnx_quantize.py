"""Int8 quantisation of an fp32 ONNX transformer with per-token activation scales.

``onnxruntime.quantization.quantize_dynamic`` quantises each activation with one scale for the whole
tensor (``DynamicQuantizeLinear``): the scale of a query then depends on the other texts of its batch,
padding included, so its vector changes with its neighbours. Here every ``MatMul`` with a constant
weight becomes ``MatMulInteger`` with

* activations: one symmetric scale per token (``max |x|`` over the hidden dimension), stored as uint8
  with the fixed zero point 128, so a token's quantised values depend on that token alone;
* weights: one symmetric scale per output column, 7-bit (``[-64, 63]``). ONNX Runtime's u8s8 kernel
  on AVX2 CPUs without VNNI sums pairs of u8 x s8 products in int16 (``vpmaddubsw``), which saturates
  for 8-bit weights (255 x 127 x 2 > 32767) while VNNI CPUs do not: with 7-bit weights the integer
  products are exact on every x86 CPU (255 x 64 x 2 <= 32767), so AVX2, AVX-512 and VNNI machines
  compute the same integers.

Attention's activation-by-activation products and the embedding lookups stay fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

#: Weight levels: 7-bit symmetric, so u8 x s8 pair sums fit int16 on AVX2 (see the module docstring).
WEIGHT_LEVELS = 63
#: Activation levels: 8-bit symmetric around the zero point 128.
ACTIVATION_LEVELS = 127


def quantize_per_token(src: Path, dst: Path) -> int:
    """Write ``dst``: ``src`` with its constant-weight MatMuls in int8 (see the module docstring).

    Returns the number of MatMuls quantised.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts: List[onnx.TensorProto] = [
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "q8_zero_point"),
        numpy_helper.from_array(np.array(ACTIVATION_LEVELS, dtype=np.float32), "q8_levels"),
        numpy_helper.from_array(np.array(128.5, dtype=np.float32), "q8_offset"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "q8_tiny"),
    ]
    quantised_inputs: Dict[str, tuple] = {}  # activation name -> (uint8 name, abs-max name)
    nodes: List[onnx.NodeProto] = []
    replaced = 0

    def quantise_activation(x: str) -> tuple:
        """uint8 = trunc(x * 127 / max|x| + 128.5), i.e. round-half-up of x / scale + 128, per token."""
        if x not in quantised_inputs:
            p = f"q8/{len(quantised_inputs)}"
            nodes.extend([
                helper.make_node("Abs", [x], [f"{p}/abs"]),
                helper.make_node("ReduceMax", [f"{p}/abs"], [f"{p}/absmax0"], axes=[-1], keepdims=1),
                helper.make_node("Max", [f"{p}/absmax0", "q8_tiny"], [f"{p}/absmax"]),
                helper.make_node("Div", ["q8_levels", f"{p}/absmax"], [f"{p}/inv_scale"]),
                helper.make_node("Mul", [x, f"{p}/inv_scale"], [f"{p}/scaled"]),
                helper.make_node("Add", [f"{p}/scaled", "q8_offset"], [f"{p}/shifted"]),
                helper.make_node("Cast", [f"{p}/shifted"], [f"{p}/u8"], to=TensorProto.UINT8),
            ])
            quantised_inputs[x] = (f"{p}/u8", f"{p}/absmax")
        return quantised_inputs[x]

    for node in graph.node:
        weight = inits.get(node.input[1]) if node.op_type == "MatMul" else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != TensorProto.FLOAT:
            nodes.append(node)
            continue
        w = numpy_helper.to_array(weight).astype(np.float32)
        col_max = np.maximum(np.abs(w).max(axis=0), 1e-12)
        w_scale = col_max / WEIGHT_LEVELS
        w_q = np.clip(np.rint(w / w_scale), -WEIGHT_LEVELS - 1, WEIGHT_LEVELS).astype(np.int8)
        name = node.input[1]
        consts.append(numpy_helper.from_array(w_q, f"{name}/q8"))
        # Output = int32 product * w_scale[n] * (max|x| / 127); 1/127 folded into the column scale.
        consts.append(numpy_helper.from_array((w_scale / ACTIVATION_LEVELS).astype(np.float32), f"{name}/q8_scale"))
        x_u8, x_absmax = quantise_activation(node.input[0])
        out = node.output[0]
        nodes.extend([
            helper.make_node("MatMulInteger", [x_u8, f"{name}/q8", "q8_zero_point"], [f"{out}/i32"]),
            helper.make_node("Cast", [f"{out}/i32"], [f"{out}/f32"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{out}/f32", f"{name}/q8_scale"], [f"{out}/col_scaled"]),
            helper.make_node("Mul", [f"{out}/col_scaled", x_absmax], [out]),
        ])
        replaced += 1

    used = {i for n in nodes for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(keep + consts)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return replaced
