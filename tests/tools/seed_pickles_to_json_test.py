"""Tests for tools/seed_pickles_to_json.py (ctest: seed_pickles_to_json).

Writes small pickles in the seed's shapes into a temporary folder, runs the converter as a
subprocess and checks the JSON bytes, the refusals (globals, numpy objects, malformed shapes)
and the no-overwrite rule. Standard library only:

    /usr/bin/python3 tests/tools/seed_pickles_to_json_test.py
"""
import importlib.util
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "..", "tools", "seed_pickles_to_json.py")

# Upstream shapes (ECIR src/data_processing.py): dict user_idx -> item list, a 2-tuple of
# mapping dicts (original id -> index), a 2-tuple of counts.
TRAIN = {0: [3, 1, 2], 2: [0], 1: [4, 4, 1]}
VALID = {1: [4, 0]}
MAPPINGS = ({196: 0, 186: 1, 22: 2}, {242: 0, 302: 1, 377: 2, 51: 3, 346: 4})
COUNTS = (3, 5)


class Evil:
    """Unpickling this with pickle.load would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


# --- hand-built pickle opcodes -------------------------------------------------------------

def _short_str(s):  # SHORT_BINUNICODE
    b = s.encode("utf-8")
    return b"\x8c" + bytes([len(b)]) + b


def _int(v):  # BININT (signed 32-bit)
    return b"J" + struct.pack("<i", v)


def numpy_int64(v, module="numpy.core.multiarray"):
    """The protocol-4 bytes numpy writes for numpy.int64(v): scalar(dtype('i8'), raw)."""
    return (_short_str(module) + _short_str("scalar") + b"\x93"
            + _short_str("numpy") + _short_str("dtype") + b"\x93"
            + _short_str("i8") + b"\x89\x88\x87R"                     # dtype('i8', False, True)
            + b"(K\x03" + _short_str("<") + b"NNN" + _int(-1) + _int(-1) + b"K\x00tb"  # BUILD
            + b"C\x08" + struct.pack("<q", v) + b"\x86R")             # scalar(dtype, raw)


def numpy_float64(v):
    return (_short_str("numpy.core.multiarray") + _short_str("scalar") + b"\x93"
            + _short_str("numpy") + _short_str("dtype") + b"\x93"
            + _short_str("f8") + b"\x89\x88\x87R"
            + b"(K\x03" + _short_str("<") + b"NNN" + _int(-1) + _int(-1) + b"K\x00tb"
            + b"C\x08" + struct.pack("<d", v) + b"\x86R")


def numpy_int64_protocol2(v):
    """Protocol 2 keeps the raw bytes as _codecs.encode(text, 'latin1')."""
    raw = struct.pack("<q", v).decode("latin1")
    return (b"cnumpy.core.multiarray\nscalar\n"
            + b"cnumpy\ndtype\nX\x02\x00\x00\x00i8\x89\x88\x87R"
            + b"(K\x03X\x01\x00\x00\x00<NNN" + _int(-1) + _int(-1) + b"K\x00tb"
            + b"c_codecs\nencode\nX" + struct.pack("<I", len(raw.encode("utf-8")))
            + raw.encode("utf-8") + b"X\x06\x00\x00\x00latin1\x86R\x86R")


def dict_of(pairs):  # EMPTY_DICT MARK k v ... SETITEMS
    return b"}(" + b"".join(k + v for k, v in pairs) + b"u"


def numpy_mappings(scalar=numpy_int64, proto=b"\x80\x04"):
    users = dict_of([(scalar(196), b"K\x00"), (scalar(186), b"K\x01")])
    items = dict_of([(scalar(242), b"K\x00"), (scalar(-7), b"K\x01")])
    return proto + users + items + b"\x86."  # TUPLE2 STOP


class ConverterTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name
        self.out = os.path.join(self.dir, "out")
        self.marker = os.path.join(self.dir, "EXECUTED")

    def tearDown(self):
        self._tmp.cleanup()

    def pkl(self, name, obj, protocol=pickle.DEFAULT_PROTOCOL):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        return path

    def raw(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, "--out", self.out, *args],
                              capture_output=True, text=True, timeout=60)

    def read(self, name):
        with open(os.path.join(self.out, name), "rb") as f:
            return f.read().decode("utf-8")

    def outputs(self):
        return sorted(os.listdir(self.out)) if os.path.isdir(self.out) else []

    def assertRefused(self, r, *fragments):
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("error: "), r.stderr)
        for frag in fragments:
            self.assertIn(frag, lines[0])
        self.assertFalse(os.path.exists(self.marker), "the pickle ran code")
        return lines[0]

    # --- valid inputs ----------------------------------------------------------------------

    def test_upstream_shapes_give_the_exact_json(self):
        for protocol in (0, 2, 4, pickle.HIGHEST_PROTOCOL):
            with self.subTest(protocol=protocol):
                if os.path.isdir(self.out):
                    for f in os.listdir(self.out):
                        os.unlink(os.path.join(self.out, f))
                r = self.run_tool(
                    "--sequences", self.pkl("train_sequences.pkl", TRAIN, protocol),
                    self.pkl("valid_sequences.pkl", VALID, protocol),
                    "--mappings", self.pkl("mappings.pkl", MAPPINGS, protocol),
                    "--counts", self.pkl("counts.pkl", COUNTS, protocol))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                self.assertEqual(self.outputs(), ["counts.json", "mappings.json",
                                                  "train_sequences.json", "valid_sequences.json"])
                self.assertEqual(self.read("train_sequences.json"),
                                 '{"0":[3,1,2],"2":[0],"1":[4,4,1]}\n')
                self.assertEqual(self.read("valid_sequences.json"), '{"1":[4,0]}\n')
                self.assertEqual(self.read("mappings.json"),
                                 '{"users":{"196":0,"186":1,"22":2},'
                                 '"items":{"242":0,"302":1,"377":2,"51":3,"346":4}}\n')
                self.assertEqual(self.read("counts.json"), "[3,5]\n")
                self.assertIn("train_sequences.json: sequences, 3 users, 7 interactions", r.stdout)

    def test_string_ids_lists_and_non_ascii_are_kept(self):
        mappings = [{"A1B2": 0, "ü-42": 1}, {"B00ABC": 0}]  # a list instead of the tuple
        r = self.run_tool("--mappings", self.pkl("m.pkl", mappings),
                          "--counts", self.pkl("c.pkl", [2, 1]))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read("m.json"), '{"users":{"A1B2":0,"ü-42":1},"items":{"B00ABC":0}}\n')
        self.assertEqual(json.loads(self.read("c.json")), [2, 1])

    # --- code in the pickle ----------------------------------------------------------------

    def test_hand_built_os_system_is_refused_and_not_run(self):
        proto0 = ("cos\nsystem\n(S'touch %s'\ntR." % self.marker).encode()
        cmd = _short_str("touch " + self.marker)
        proto4 = b"\x80\x04" + _short_str("os") + _short_str("system") + b"\x93" + cmd + b"\x85R."
        for name, data in (("p0.pkl", proto0), ("p4.pkl", proto4)):
            with self.subTest(name=name):
                r = self.run_tool("--sequences", self.raw(name, data))
                self.assertRefused(r, name, "forbidden global 'os.system'")
                self.assertEqual(self.outputs(), [])

    def test_class_instance_is_refused_and_not_run(self):
        path = self.pkl("evil.pkl", {0: [1], 1: Evil(self.marker)})
        line = self.assertRefused(self.run_tool("--sequences", path), "evil.pkl", "forbidden global")
        self.assertRegex(line, r"'(posix|os|nt)\.system'")
        self.assertEqual(self.outputs(), [])

    def test_every_global_is_refused_even_builtins(self):
        cases = {
            "inst.pkl": pickle.dumps({0: [1], 1: ConverterTest}),     # a class reference
            "eval.pkl": b"cbuiltins\neval\n(S'1+1'\ntR.",
            "set.pkl": pickle.dumps({0: {1, 2}}, protocol=2),         # builtins.set
        }
        for name, data in cases.items():
            with self.subTest(name=name):
                self.assertRefused(self.run_tool("--sequences", self.raw(name, data)),
                                   name, "forbidden global '")

    def test_numpy_objects_are_refused_with_a_hint(self):
        r = self.run_tool("--mappings", self.raw("mappings.pkl", numpy_mappings()))
        self.assertRefused(r, "mappings.pkl", "numpy objects", "'numpy.core.multiarray.scalar'",
                           "int()", "--numpy-ints")
        self.assertEqual(self.outputs(), [])

    def test_numpy_ints_decodes_numpy_integer_scalars_only(self):
        for label, data in (("numpy 1, protocol 4", numpy_mappings()),
                            ("numpy 2, protocol 4",
                             numpy_mappings(lambda v: numpy_int64(v, "numpy._core.multiarray"))),
                            ("protocol 2", numpy_mappings(numpy_int64_protocol2, b"\x80\x02"))):
            with self.subTest(label=label):
                r = self.run_tool("--force", "--numpy-ints", "--mappings", self.raw("m.pkl", data))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(self.read("m.json"),
                                 '{"users":{"196":0,"186":1},"items":{"242":0,"-7":1}}\n')
        # a float scalar, and any other global, stay refused under --numpy-ints
        floats = b"\x80\x04}(" + numpy_float64(1.5) + b"K\x00u}\x86."
        self.assertRefused(self.run_tool("--numpy-ints", "--mappings", self.raw("f.pkl", floats)),
                           "f.pkl", "integer")
        self.assertRefused(self.run_tool("--numpy-ints", "--sequences",
                                         self.pkl("evil.pkl", Evil(self.marker))),
                           "forbidden global")
        # numpy ints as sequence items are decoded too (no floats)
        seq = b"\x80\x04}(K\x00](" + numpy_int64(5) + numpy_int64(2) + b"eu."
        r = self.run_tool("--numpy-ints", "--sequences", self.raw("s.pkl", seq))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read("s.json"), '{"0":[5,2]}\n')

    # --- malformed shapes ------------------------------------------------------------------

    def test_malformed_shapes_name_file_and_place(self):
        cases = [
            ("sequences", [[1, 2], [3]], "expected sequences as a dict user_idx -> list of item_idx, found a list of 2"),
            ("sequences", {0: [1, 2.0]}, "user 0, position 1: expected an item index as a non-negative integer, found float 2.0"),
            ("sequences", {0: [1, True]}, "user 0, position 1: expected an item index as a non-negative integer, found bool True"),
            ("sequences", {0: [1, -3]}, "user 0, position 1: expected an item index as a non-negative integer, found -3"),
            ("sequences", {-1: [1]}, "key -1: expected a user index as a non-negative integer, found -1"),
            ("sequences", {"7": [1]}, "key '7': expected a user index as a non-negative integer, found str '7'"),
            ("sequences", {0: 5}, "user 0: expected a list of item indices, found int 5"),
            ("sequences", {0: [2**40]}, "larger than 2147483647"),
            ("sequences", {10**5000: [1]}, "key an integer of 16610 bits: a user index an integer of 16610 bits is larger"),
            ("sequences", {0: [1], 1: 10**5000}, "user 1: expected a list of item indices, found int an integer of 16610 bits"),
            ("mappings", ({10**5000: 0}, {}), "users mapping: original id an integer of 16610 bits is too large"),
            ("mappings", {"user_mapping": {}, "item_mapping": {}}, "expected mappings as a 2-tuple (user_id_mapping, item_id_mapping), found a dict of 2"),
            ("mappings", ({1: 0}, [0]), "items mapping: expected a dict original id -> item index, found a list of 1"),
            ("mappings", ({1: 0, 2: -1}, {}), "users mapping, original id '2': expected a user index as a non-negative integer, found -1"),
            ("mappings", ({1.5: 0}, {}), "users mapping: expected original ids as ints or strings, found float 1.5"),
            ("mappings", ({1: 0, "1": 1}, {}), "both read as '1'"),
            ("mappings", ({1: 0, 2: 0}, {}), "original ids '1' and '2' both map to 0"),
            ("counts", (3, 5, 7), "expected counts as a 2-tuple (num_users, num_items), found a tuple of 3"),
            ("counts", {"num_users": 3, "num_items": 5}, "expected counts as a 2-tuple"),
            ("counts", (3, 5.0), "num_items: expected a count as a non-negative integer, found float 5.0"),
        ]
        for kind, obj, fragment in cases:
            with self.subTest(kind=kind, obj=obj):
                path = self.pkl("bad_" + kind + ".pkl", obj)
                self.assertRefused(self.run_tool("--" + kind, path), "bad_" + kind + ".pkl: ", fragment)
                self.assertEqual(self.outputs(), [])

    def test_a_list_shared_by_users_is_refused(self):
        # A back-reference lets a small pickle name one long list for every user (work and
        # memory multiplied); the seed writes one list per user.
        shared = list(range(1000))
        path = self.pkl("shared.pkl", {u: shared for u in range(50)})
        self.assertRefused(self.run_tool("--sequences", path), "users 0 and 1 share one list object")
        self.assertEqual(self.outputs(), [])

    def test_indices_are_checked_against_counts(self):
        counts = self.pkl("counts.pkl", (3, 4))
        r = self.run_tool("--sequences", self.pkl("s.pkl", {0: [1, 4]}), "--counts", counts)
        self.assertRefused(r, "s.pkl: user 0, position 1: item 4 is not below num_items = 4 (counts)")
        r = self.run_tool("--sequences", self.pkl("s.pkl", {3: [1]}), "--counts", counts)
        self.assertRefused(r, "s.pkl: user 3 is not below num_users = 3 (counts)")
        r = self.run_tool("--mappings", self.pkl("m.pkl", ({9: 0}, {8: 4})), "--counts", counts)
        self.assertRefused(r, "m.pkl: items mapping, original id '8': index 4 is not below 4")
        self.assertEqual(self.outputs(), [])

    def test_broken_pickles(self):
        good = pickle.dumps(TRAIN, protocol=4)
        self.assertRefused(self.run_tool("--sequences", self.raw("cut.pkl", good[:-5])),
                           "cut.pkl: not a readable pickle")
        self.assertRefused(self.run_tool("--sequences", self.raw("two.pkl", good + good)),
                           "two.pkl: ", "after the pickled object")
        self.assertRefused(self.run_tool("--sequences", os.path.join(self.dir, "missing.pkl")),
                           "missing.pkl: cannot read")
        self.assertRefused(self.run_tool(), "nothing to convert")
        self.assertEqual(self.outputs(), [])

    # --- writing ---------------------------------------------------------------------------

    def test_existing_output_is_kept_without_force(self):
        path = self.pkl("train_sequences.pkl", TRAIN)
        os.makedirs(self.out)
        dst = os.path.join(self.out, "train_sequences.json")
        with open(dst, "w") as f:
            f.write("keep me\n")
        self.assertRefused(self.run_tool("--sequences", path),
                           "train_sequences.json: exists (pass --force to replace it)")
        self.assertEqual(self.read("train_sequences.json"), "keep me\n")
        # checked before any writing: valid_sequences.json, due before it, is not written either
        r = self.run_tool("--sequences", self.pkl("valid_sequences.pkl", VALID), path)
        self.assertRefused(r, "train_sequences.json: exists")
        self.assertEqual(self.outputs(), ["train_sequences.json"])
        r = self.run_tool("--force", "--sequences", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.read("train_sequences.json"), '{"0":[3,1,2],"2":[0],"1":[4,4,1]}\n')
        self.assertEqual(self.outputs(), ["train_sequences.json"])  # no temporary left over

    def test_the_atomic_write_itself_never_clobbers(self):
        # An output that appears after the up-front check is still kept (the write links the
        # temporary to the final name instead of renaming over it).
        spec = importlib.util.spec_from_file_location("seed_pickles_to_json", TOOL)
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
        os.makedirs(self.out)
        dst = os.path.join(self.out, "x.json")
        with open(dst, "w") as f:
            f.write("first\n")
        with self.assertRaisesRegex(tool.ConvertError, "exists"):
            tool.write_atomic(dst, "second\n", force=False)
        self.assertEqual(self.read("x.json"), "first\n")
        tool.write_atomic(dst, "third\n", force=True)
        self.assertEqual(self.read("x.json"), "third\n")
        tool.write_atomic(os.path.join(self.out, "y.json"), "new\n", force=False)
        self.assertEqual(self.outputs(), ["x.json", "y.json"])

    def test_nothing_is_written_when_one_input_fails(self):
        r = self.run_tool("--sequences", self.pkl("train_sequences.pkl", TRAIN),
                          "--counts", self.pkl("counts.pkl", (3, -5)))
        self.assertRefused(r, "counts.pkl: num_items")
        self.assertEqual(self.outputs(), [])
        # a clash of output names is refused before anything is written
        os.makedirs(os.path.join(self.dir, "b"))
        other = os.path.join(self.dir, "b", "train_sequences.pkl")
        with open(other, "wb") as f:
            pickle.dump(VALID, f)
        r = self.run_tool("--sequences", os.path.join(self.dir, "train_sequences.pkl"), other)
        self.assertRefused(r, "would both be written to")
        self.assertEqual(self.outputs(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
