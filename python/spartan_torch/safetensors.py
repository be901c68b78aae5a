"""safetensors read/write in pure Python (struct + json + numpy; Hugging Face `safetensors` is not a Debian package).
Writes are atomic (temp file in the same folder, fsync, rename), so an interrupted save leaves an earlier file."""
import json
import os
import struct

import numpy as np
import torch

_ST_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "F64": (np.float64, 8), "BF16": (None, 2),
              "I64": (np.int64, 8), "I32": (np.int32, 4)}


def read_safetensors(path, dtype=torch.float64):
    """Returns (tensors: dict name -> torch tensor of `dtype`, metadata: dict or {})."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: not a safetensors file (shorter than 8 bytes)" % path)
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("%s: header length %d exceeds the file size" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dt = info["dtype"]
        shape = list(info["shape"])
        b, e = info["data_offsets"]
        if dt not in _ST_DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dt))
        npdt, size = _ST_DTYPES[dt]
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * size or e > len(data):
            raise ValueError("%s: tensor %s has inconsistent data offsets" % (path, name))
        buf = data[b:e]
        if dt == "BF16":
            u16 = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        else:
            arr = np.frombuffer(buf, dtype=np.dtype(npdt).newbyteorder("<"))
        arr = arr.astype(np.float64 if dtype == torch.float64 else np.float32).reshape(shape)
        out[name] = torch.from_numpy(arr.copy()).to(dtype)
    return out, meta


def write_safetensors(path, tensors, metadata=None, dtype="F32"):
    """Writes `tensors` (dict name -> tensor/array) as F32, F64 or F16 safetensors, names sorted, atomically.
    F16 is rounded to nearest even from the tensor's own precision (float32 for a trained memory, as the engine)."""
    npdt = {"F32": "<f4", "F64": "<f8", "F16": "<f2"}[dtype]
    header = {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name]
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        arr = np.ascontiguousarray(np.asarray(t).astype(npdt))
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * ((8 - len(hb) % 8) % 8)
    write_file_atomic(path, [struct.pack("<Q", len(hb)), hb] + blobs)
    return 8 + len(hb) + off


def write_file_atomic(path, chunks):
    """Temp file in the target's folder (a rename is atomic only within one file system), fsync, rename over the
    target; on any error the temp file is removed and an earlier file at `path` is untouched."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, ".%s.tmp-%d-%s" % (os.path.basename(path), os.getpid(), os.urandom(6).hex()))
    try:
        with open(tmp, "wb") as f:
            for c in chunks:
                f.write(c.encode("utf-8") if isinstance(c, str) else c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
