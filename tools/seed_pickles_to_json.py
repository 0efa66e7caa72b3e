"""Convert the profile-distillation seed's pickle inputs (data.profile_train_sequences,
data.finetune_train_sequences, data.valid_sequences, data.test_sequences, data.mappings,
data.counts) to the JSON interchange files the C++ apps read (specs/profile-distillation.md §9):

    /usr/bin/python3 tools/seed_pickles_to_json.py --out DIR \\
        [--sequences train_sequences.pkl valid_sequences.pkl test_sequences.pkl ...] \\
        [--mappings mappings.pkl] [--counts counts.pkl] [--force] [--numpy-ints]

Each input FILE.pkl becomes DIR/FILE.json:

    sequences  {"<user_idx>": [item_idx, ...], ...}     items in the pickle's (chronological) order
    mappings   {"users": {"<original id>": user_idx, ...}, "items": {"<original id>": item_idx, ...}}
    counts     [num_users, num_items]

The upstream shapes (ECIR code, src/data_processing.py and src/training.py): sequences are a
dict user_idx -> list of item_idx; mappings a 2-tuple (user_id_mapping, item_id_mapping) of
dicts original id -> index; counts a 2-tuple (num_users, num_items). Lists are accepted where
tuples are expected.

Pickles are read with a restricted unpickler that resolves no global at all: only dicts,
lists, tuples, ints and strings (and the scalars pickle builds without a global) can load, so
no class is instantiated and no function is called. Pickles holding numpy scalars (upstream's
mappings have numpy.int64 original ids, from pandas' unique()) are refused unless
--numpy-ints is given: then numpy integer scalars, and only those, are decoded from their raw
bytes by this script's own code (numpy is never imported and nothing from the pickle is
called).

Every input is read and checked before anything is written. An existing output is kept unless
--force; each output is written under a temporary name in DIR and then renamed, so no
half-written file is ever left under the final name. Errors: one line on stderr starting with
"error:", exit status 2.
"""
import argparse
import io
import json
import os
import pickle
import sys
import tempfile

INDEX_LIMIT = 2**31 - 1  # the C++ readers keep user and item indices in 32-bit ints

NUMPY_SCALAR_GLOBALS = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}
NUMPY_DTYPE_GLOBALS = {("numpy", "dtype")}
# A protocol 0-2 pickle stores the scalar's raw bytes through _codecs.encode(str, "latin1").
CODECS_ENCODE_GLOBALS = {("_codecs", "encode")}
NUMPY_INT_CODES = {"i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"}


class ConvertError(Exception):
    pass


class _NumpyIntDType:
    """Stand-in for numpy.dtype(code, align, copy): remembers the integer code and, from the
    state pickle's BUILD sets, the byte order. Refuses every non-integer dtype."""

    def __init__(self, code, align=False, copy=False):
        if not isinstance(code, str) or code not in NUMPY_INT_CODES:
            raise _NumpyRefused(f"numpy dtype {code!r} (only integer dtypes are decoded)")
        self.code = code
        self.size = int(code[1])
        self.byteorder = "<" if self.size > 1 else "|"

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]
        else:
            raise _NumpyRefused(f"numpy dtype state {state!r}")


class _NumpyRefused(Exception):
    pass


def _numpy_scalar(dtype, raw):
    if not isinstance(dtype, _NumpyIntDType) or not isinstance(raw, bytes):
        raise _NumpyRefused("a numpy scalar that is not an integer")
    if len(raw) != dtype.size:
        raise _NumpyRefused(f"a numpy {dtype.code} scalar of {len(raw)} bytes")
    order = {"<": "little", ">": "big", "|": "little", "=": sys.byteorder}[dtype.byteorder]
    return int.from_bytes(raw, order, signed=dtype.code[0] == "i")


def _codecs_encode(text, encoding):
    if not isinstance(text, str) or encoding != "latin1":
        raise _NumpyRefused("_codecs.encode other than (str, 'latin1')")
    return text.encode("latin1")


class ForbiddenGlobal(Exception):
    def __init__(self, module, name):
        super().__init__(f"{module}.{name}")
        self.module, self.name = module, name


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves no global. With numpy_ints, only numpy's scalar/dtype reconstructors (and the
    protocol-2 bytes helper) resolve, to this module's decoders above."""

    def __init__(self, f, numpy_ints=False):
        super().__init__(f)
        self.numpy_ints = numpy_ints

    def find_class(self, module, name):
        if self.numpy_ints:
            key = (module, name)
            if key in NUMPY_SCALAR_GLOBALS:
                return _numpy_scalar
            if key in NUMPY_DTYPE_GLOBALS:
                return _NumpyIntDType
            if key in CODECS_ENCODE_GLOBALS:
                return _codecs_encode
        raise ForbiddenGlobal(module, name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are not supported")


def load_pickle(path, numpy_ints):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConvertError(f"{path}: cannot read: {e.strerror or e}")
    buf = io.BytesIO(data)
    try:
        obj = RestrictedUnpickler(buf, numpy_ints).load()
    except ForbiddenGlobal as e:
        if e.module == "numpy" or e.module.startswith("numpy."):
            what = "numpy objects other than integer scalars" if numpy_ints else "numpy objects"
            rest = "" if numpy_ints else (
                ", or pass --numpy-ints to decode numpy integer scalars without numpy")
            raise ConvertError(
                f"{path}: the pickle contains {what} (global '{e}'), which this reader never "
                "loads; re-save it with plain Python values (int() on every numpy key and value, "
                ".tolist() on arrays, before pickle.dump, e.g. {int(k): int(v) for k, v in "
                f"m.items()}}){rest}")
        raise ConvertError(
            f"{path}: forbidden global '{e}' in the pickle; only dicts, lists, tuples, ints "
            "and strings are read (no classes, no functions)")
    except _NumpyRefused as e:
        raise ConvertError(f"{path}: --numpy-ints decodes numpy integer scalars only, found {e}")
    except RecursionError:
        raise ConvertError(f"{path}: the pickle is nested too deeply")
    except Exception as e:  # truncated or corrupt data: EOFError, UnpicklingError, ...
        msg = str(e) or type(e).__name__
        raise ConvertError(f"{path}: not a readable pickle: {msg}")
    if buf.tell() != len(data):
        raise ConvertError(
            f"{path}: {len(data) - buf.tell()} bytes of data after the pickled object "
            "(expected exactly one object)")
    return obj


def _int_text(v):
    """An int for a message: huge ones (past Python's 4300-digit str limit) by their size only."""
    return str(v) if abs(v).bit_length() <= 64 else f"an integer of {abs(v).bit_length()} bits"


def _kind(v):
    if v is None:
        return "None"
    if type(v) is int:
        return f"int {_int_text(v)}"
    if isinstance(v, (bool, int, float, str)):
        r = repr(v)
        return f"{type(v).__name__} {r if len(r) <= 40 else r[:37] + '...'}"
    if isinstance(v, (dict, list, tuple, set, frozenset, bytes, bytearray)):
        return f"a {type(v).__name__} of {len(v)}"
    return f"a {type(v).__name__}"


def _is_int(v):
    return type(v) is int  # not bool, not an int subclass


def _index(v, path, where, what):
    if not _is_int(v):
        raise ConvertError(f"{path}: {where}: expected {what} as a non-negative integer, found {_kind(v)}")
    if v < 0:
        raise ConvertError(f"{path}: {where}: expected {what} as a non-negative integer, found {_int_text(v)}")
    if v > INDEX_LIMIT:
        raise ConvertError(f"{path}: {where}: {what} {_int_text(v)} is larger than {INDEX_LIMIT} (32-bit)")
    return v


def check_sequences(obj, path):
    if type(obj) is not dict:
        raise ConvertError(
            f"{path}: expected sequences as a dict user_idx -> list of item_idx, found {_kind(obj)}")
    out = {}
    seen_lists = {}  # id -> user: one list object shared by many users would multiply the work
    for user, items in obj.items():
        _index(user, path, f"key {_int_text(user) if type(user) is int else repr(user)}", "a user index")
        if id(items) in seen_lists:
            raise ConvertError(
                f"{path}: users {seen_lists[id(items)]} and {user} share one list object (a pickle back-reference); "
                "the seed writes one list per user")
        seen_lists[id(items)] = user
        if type(items) not in (list, tuple):
            raise ConvertError(
                f"{path}: user {user}: expected a list of item indices, found {_kind(items)}")
        for pos, item in enumerate(items):
            _index(item, path, f"user {user}, position {pos}", "an item index")
        out[user] = list(items)
    return out


def _check_mapping(m, path, side):
    if type(m) is not dict:
        raise ConvertError(
            f"{path}: {side} mapping: expected a dict original id -> {side[:-1]} index, found {_kind(m)}")
    out = {}
    seen_index = {}
    for orig, idx in m.items():
        if _is_int(orig):
            if abs(orig).bit_length() > 64:
                raise ConvertError(f"{path}: {side} mapping: original id {_int_text(orig)} is too large")
            key = str(orig)
        elif type(orig) is str:
            key = orig
            try:
                key.encode("utf-8")
            except UnicodeEncodeError:
                raise ConvertError(f"{path}: {side} mapping: original id {orig!r} is not valid Unicode text")
        else:
            raise ConvertError(
                f"{path}: {side} mapping: expected original ids as ints or strings, found {_kind(orig)}")
        _index(idx, path, f"{side} mapping, original id {key!r}", f"a {side[:-1]} index")
        if key in out:
            raise ConvertError(
                f"{path}: {side} mapping: original ids {orig!r} and another id both read as {key!r}")
        if idx in seen_index:
            raise ConvertError(
                f"{path}: {side} mapping: original ids {seen_index[idx]!r} and {key!r} both map to {idx}")
        seen_index[idx] = key
        out[key] = idx
    return out


def check_mappings(obj, path):
    if type(obj) not in (tuple, list) or len(obj) != 2:
        raise ConvertError(
            f"{path}: expected mappings as a 2-tuple (user_id_mapping, item_id_mapping), found {_kind(obj)}")
    return {"users": _check_mapping(obj[0], path, "users"),
            "items": _check_mapping(obj[1], path, "items")}


def check_counts(obj, path):
    if type(obj) not in (tuple, list) or len(obj) != 2:
        raise ConvertError(
            f"{path}: expected counts as a 2-tuple (num_users, num_items), found {_kind(obj)}")
    return [_index(obj[0], path, "num_users", "a count"), _index(obj[1], path, "num_items", "a count")]


def cross_check(jobs, counts):
    """With counts in the same run, every index must lie below its count."""
    num_users, num_items = counts
    for kind, path, _, value in jobs:
        if kind == "sequences":
            for user, items in value.items():
                if user >= num_users:
                    raise ConvertError(f"{path}: user {user} is not below num_users = {num_users} (counts)")
                for pos, item in enumerate(items):
                    if item >= num_items:
                        raise ConvertError(f"{path}: user {user}, position {pos}: item {item} is not "
                                           f"below num_items = {num_items} (counts)")
        elif kind == "mappings":
            for side, n in (("users", num_users), ("items", num_items)):
                for orig, idx in value[side].items():
                    if idx >= n:
                        raise ConvertError(f"{path}: {side} mapping, original id {orig!r}: index {idx} "
                                           f"is not below {n} (counts)")


def to_json(kind, value):
    if kind == "sequences":
        value = {str(u): items for u, items in value.items()}
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_atomic(dst, text, force):
    folder = os.path.dirname(dst) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(dst) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if force:
            os.replace(tmp, dst)
        else:
            try:
                os.link(tmp, dst)  # fails if dst appeared meanwhile: never clobbers
            except FileExistsError:
                raise ConvertError(f"{dst}: exists (pass --force to replace it)")
            except OSError:  # no hard links on this file system
                if os.path.lexists(dst):
                    raise ConvertError(f"{dst}: exists (pass --force to replace it)")
                os.replace(tmp, dst)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"error: {message} (see --help)\n")
        sys.exit(2)


def main(argv=None):
    ap = _Parser(description=__doc__.split("\n\n")[0],
                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, metavar="DIR",
                    help="folder for the JSON files (created if missing)")
    ap.add_argument("--sequences", nargs="+", default=[], metavar="FILE.pkl",
                    help="dict user_idx -> list of item_idx (train, finetune, valid, test)")
    ap.add_argument("--mappings", metavar="FILE.pkl",
                    help="2-tuple (user_id_mapping, item_id_mapping)")
    ap.add_argument("--counts", metavar="FILE.pkl", help="2-tuple (num_users, num_items)")
    ap.add_argument("--force", action="store_true", help="replace existing outputs")
    ap.add_argument("--numpy-ints", action="store_true",
                    help="decode numpy integer scalars (upstream's mappings hold numpy.int64 ids)")
    a = ap.parse_args(argv)

    inputs = [("sequences", p) for p in a.sequences]
    if a.mappings:
        inputs.append(("mappings", a.mappings))
    if a.counts:
        inputs.append(("counts", a.counts))
    try:
        if not inputs:
            raise ConvertError("nothing to convert: give --sequences, --mappings and/or --counts")
        if os.path.exists(a.out) and not os.path.isdir(a.out):
            raise ConvertError(f"{a.out}: not a folder")
        jobs, by_dst = [], {}
        for kind, path in inputs:
            stem = os.path.splitext(os.path.basename(path))[0]
            dst = os.path.join(a.out, stem + ".json")
            if dst in by_dst:
                raise ConvertError(f"{path} and {by_dst[dst]} would both be written to {dst}")
            by_dst[dst] = path
            if os.path.exists(dst) and os.path.exists(path) and os.path.samefile(dst, path):
                raise ConvertError(f"{path}: the output {dst} would replace the input")
            obj = load_pickle(path, a.numpy_ints)
            check = {"sequences": check_sequences, "mappings": check_mappings,
                     "counts": check_counts}[kind]
            jobs.append((kind, path, dst, check(obj, path)))
        counts = next((v for k, _, _, v in jobs if k == "counts"), None)
        if counts is not None:
            cross_check(jobs, counts)
        if not a.force:
            for _, _, dst, _ in jobs:
                if os.path.lexists(dst):
                    raise ConvertError(f"{dst}: exists (pass --force to replace it)")
        os.makedirs(a.out, exist_ok=True)
        for kind, path, dst, value in jobs:
            write_atomic(dst, to_json(kind, value), a.force)
            if kind == "sequences":
                what = f"{len(value)} users, {sum(len(s) for s in value.values())} interactions"
            elif kind == "mappings":
                what = f"{len(value['users'])} users, {len(value['items'])} items"
            else:
                what = f"num_users {value[0]}, num_items {value[1]}"
            print(f"wrote {dst}: {kind}, {what}")
    except ConvertError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"error: {e.filename or ''}: {e.strerror or e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
