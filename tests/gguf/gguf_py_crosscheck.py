"""Cross-check helper for the C++ GGUF reader/writer against the reference Python `gguf` package.

  dump PATH   print a canonical text dump of PATH as parsed by gguf.GGUFReader
  write PATH  write a GGUF file covering every value type and a few tensors with gguf.GGUFWriter

The dump format is mirrored by tests/gguf/gguf_python_crosscheck_test.cpp; both sides must print
identical text for the same file. Floats are printed as raw bit patterns so nothing is rounded.
"""
import struct
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as VT


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def scalar_text(vtype, arr) -> str:
    v = arr[0]
    if vtype == VT.FLOAT32:
        return f"{struct.unpack('<I', struct.pack('<f', float(v)))[0]:08x}"
    if vtype == VT.FLOAT64:
        return f"{struct.unpack('<Q', struct.pack('<d', float(v)))[0]:016x}"
    if vtype == VT.BOOL:
        return "1" if bool(v) else "0"
    return str(int(v))


def value_text(vtype, parts, i):
    """Renders the value whose parts start at parts[i]; returns (text, next index)."""
    name = vtype.name.lower()
    if vtype == VT.STRING:
        return f"{name}:{bytes(parts[i + 1]).hex()}", i + 2
    if vtype == VT.ARRAY:
        elem = VT(int(parts[i][0]))
        n = int(parts[i + 1][0])
        i += 2
        items = []
        for _ in range(n):
            t, i = value_text(elem, parts, i)
            items.append(t)
        return f"array:{elem.name.lower()}[{';'.join(items)}]", i
    return f"{name}:{scalar_text(vtype, parts[i])}", i + 1


def dump(path: str) -> None:
    r = gguf.GGUFReader(path)
    out = [f"version {int(r.fields['GGUF.version'].parts[0][0])}", f"alignment {r.alignment}"]
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue
        vtype = VT(int(field.parts[2][0]))
        text, end = value_text(vtype, field.parts, 3)
        assert end == len(field.parts), key
        out.append(f"kv {key} {text}")
    for t in r.tensors:
        dims = ",".join(str(int(d)) for d in t.shape)
        data = t.data.tobytes()
        assert len(data) == t.n_bytes, t.name
        out.append(f"tensor {t.name} type={int(t.tensor_type)} dims={dims} "
                   f"offset={t.data_offset - r.data_offset} nbytes={t.n_bytes} fnv={fnv1a64(data)}")
    print("\n".join(out))


def write(path: str) -> None:
    w = gguf.GGUFWriter(path, "llama")  # also writes general.architecture
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -2**63)
    w.add_float32("t.f32", 3.5)
    w.add_float64("t.f64", -1e300)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "h\u00e9llo \U0001F600")
    w.add_array("a.strings", ["\u2581the", "<0x0A>", "x"])
    w.add_array("a.f32", [0.5, -2.0])
    w.add_key_value("a.i32", [-1, 0, 7], VT.ARRAY, sub_type=VT.INT32)
    w.add_key_value("a.u8", [1, 2, 255], VT.ARRAY, sub_type=VT.UINT8)
    w.add_key_value("a.bool", [True, False], VT.ARRAY, sub_type=VT.BOOL)
    w.add_array("a.nested", [[1, 2], [3]])
    w.add_tensor("w.f32", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.add_tensor("w.f16", (np.arange(64, dtype=np.float16) / 8).reshape(2, 32))
    w.add_tensor("w.i32", np.array([5, -6, 7], dtype=np.int32))
    q8 = (np.arange(2 * 34) % 251).astype(np.uint8)  # two Q8_0 blocks as raw bytes
    w.add_tensor("w.q8", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("dump", "write"):
        sys.exit("usage: gguf_py_crosscheck.py dump|write PATH")
    (dump if sys.argv[1] == "dump" else write)(sys.argv[2])
