import AETrainCore
import Foundation
import XCTest

/// The readers against their reference readers (issue 23): a Python script writes a hostile
/// corpus of `.safetensors` and `.npy` files and records, for each, whether the reference
/// (the `safetensors` package's `safe_open`, and `numpy.load`) accepts it and, if so, the
/// float32 values aetrain should train on. aetrain's readers must accept exactly those files,
/// with the same values bit for bit, and refuse the rest with one line naming the file.
///
/// The one allowed difference: a file numpy or safetensors reads whose dtype aetrain does not
/// train on (int32, a structured dtype, an F4 tensor) is refused by the reader, with one line
/// naming the dtype; its safetensors header must still be accepted, with the same tensors.
final class ReferenceReaderTests: XCTestCase {
    func testHostileCorpusAgreesWithReferenceReaders() throws {
        let dir = try Harness.temporaryDirectory("reference-readers")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try Harness.python(#"""
import json, struct, warnings, numpy as np
from safetensors import safe_open, deserialize
warnings.simplefilter('ignore')
d = '\#(dir.path)'
cases = []

# ---- safetensors: the reference is safe_open (which checks the whole header and layout, as
# load_file does); the data of F32/F16/BF16 tensors comes from the bytes deserialize returns.
def st(name, header, body, tensor=None):
    h = header if isinstance(header, bytes) else header.encode()
    st_bytes(name, struct.pack('<Q', len(h)) + h + body, tensor)

def st_bytes(name, data, tensor=None):
    path = f'{d}/{name}.safetensors'
    open(path, 'wb').write(data)
    entry = {'name': name, 'kind': 'safetensors', 'file': path, 'tensor': tensor}
    try:
        with safe_open(path, framework='np') as f:
            keys = list(f.keys())
        entry['accepted'] = True
    except Exception as e:
        entry['accepted'] = False
        entry['why'] = str(e)[:160]
    try:
        listing = deserialize(data)
        assert entry['accepted'], name + ': deserialize accepts what safe_open refuses'
    except Exception:
        assert not entry['accepted'], name + ': safe_open accepts what deserialize refuses'
    if entry['accepted']:
        assert sorted(keys) == sorted(k for k, _ in listing), name
        entry['tensors'] = sorted([k, v['dtype'], [str(x) for x in v['shape']]] for k, v in listing)
        pick = tensor if tensor is not None else (listing[0][0] if len(listing) == 1 else None)
        info = dict(listing).get(pick)
        if info is not None and info['dtype'] in ('F32', 'F16', 'BF16') and all(x < 2**63 for x in info['shape']):
            raw = bytes(info['data'])
            if info['dtype'] == 'F32': x = np.frombuffer(raw, '<f4')
            elif info['dtype'] == 'F16': x = np.frombuffer(raw, '<f2').astype('<f4')
            else: x = (np.frombuffer(raw, '<u2').astype('<u4') << 16).view('<f4')
            if info['dtype'] != 'BF16':  # numpy has no bfloat16
                with safe_open(path, framework='np') as f:
                    y = f.get_tensor(pick)
                assert np.array_equal(y.astype('<f4').ravel().view('<u4'), x.view('<u4')), name
            x.astype('<f4').tofile(path + '.f32')
            entry['values'] = path + '.f32'
            entry['shape'] = list(info['shape'])
    cases.append(entry)

def T(dtype, shape, begin, end):
    return '{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}' % (dtype, shape, begin, end)

rng = np.random.default_rng(7)
X = rng.normal(size=(200, 16)).astype('<f4')
B = X.tobytes()
one = lambda entry: '{"x":%s}' % entry

st('valid_f32', one(T('F32', '[200,16]', 0, 12800)), B)
h16 = rng.normal(size=(8, 5)).astype('<f2'); h16.view('<u2')[0, :4] = [0x0001, 0x7C00, 0xFC00, 0x8000]  # subnormal, ±inf, -0
st('valid_f16_specials', one(T('F16', '[8,5]', 0, 80)), h16.tobytes())
st('valid_bf16', one(T('BF16', '[4,3]', 0, 24)), np.array([0x3F80, 0xC2F7, 0x0001, 0x8000, 0x7F80, 0x4049, 1, 2, 3, 4, 5, 6], '<u2').tobytes())
st('dup_name_last_wins', '{"x":%s,"x":%s}' % (T('F32', '[100,16]', 0, 6400), T('F32', '[200,16]', 0, 12800)), B)
st('dup_name_last_too_short', '{"x":%s,"x":%s}' % (T('F32', '[200,16]', 0, 12800), T('F32', '[100,16]', 0, 6400)), B)
st('dup_name_first_invalid', '{"x":%s,"x":%s}' % (T('F99', '[200,16]', 0, 12800), T('F32', '[200,16]', 0, 12800)), B)
st('dup_name_escaped', '{"x":%s,"\\u0078":%s}' % (T('F32', '[100,16]', 0, 6400), T('F32', '[200,16]', 0, 12800)), B)
st('dup_dtype', '{"x":{"dtype":"F32","dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('dup_dtype_escaped', '{"x":{"dtype":"F32","d\\u0074ype":"F16","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('dup_shape', '{"x":{"dtype":"F32","shape":[100,16],"shape":[200,16],"data_offsets":[0,12800]}}', B)
st('dup_offsets', '{"x":{"dtype":"F32","shape":[200,16],"data_offsets":[0,12800],"data_offsets":[0,12800]}}', B)
st('dup_metadata', '{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"},"x":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('dup_metadata_key', '{"__metadata__":{"a":"1","a":"2"},"x":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('dup_unknown_key_ignored', '{"x":{"z":1,"z":[2],"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('shape_float', one(T('F32', '[200.0,16]', 0, 12800)), B)
st('shape_exponent', one(T('F32', '[2e2,16]', 0, 12800)), B)
st('shape_minus_zero', one(T('F32', '[-0,16]', 0, 0)), b'')
st('shape_negative', one(T('F32', '[-200,16]', 0, 12800)), B)
st('shape_leading_zero', one(T('F32', '[0200,16]', 0, 12800)), B)
st('offsets_float', '{"x":{"dtype":"F32","shape":[200,16],"data_offsets":[0,12800.0]}}', B)
st('offsets_beyond_u64', '{"x":{"dtype":"F32","shape":[200,16],"data_offsets":[0,18446744073709551616]}}', B)
st('offsets_three', '{"x":{"dtype":"F32","shape":[200,16],"data_offsets":[0,12800,12800]}}', B)
st('gap_before_first', one(T('F32', '[100,16]', 6400, 12800)), B)
st('gap_between', '{"a":%s,"b":%s}' % (T('F32', '[50,16]', 0, 3200), T('F32', '[100,16]', 6400, 12800)), B, tensor='b')
st('gap_after_last', one(T('F32', '[100,16]', 0, 6400)), B)
st('overlap', '{"a":%s,"b":%s}' % (T('F32', '[150,16]', 0, 9600), T('F32', '[100,16]', 6400, 12800)), B, tensor='b')
st('reverse_offset_order', '{"b":%s,"a":%s}' % (T('F32', '[150,16]', 3200, 12800), T('F32', '[50,16]', 0, 3200)), B, tensor='b')
st('leading_whitespace', ' \n\t' + one(T('F32', '[200,16]', 0, 12800)), B)
st('trailing_spaces', one(T('F32', '[200,16]', 0, 12800)) + '      ', B)
st('trailing_nul', one(T('F32', '[200,16]', 0, 12800)) + '\0\0', B)
st('trailing_comma', '{"x":%s,}' % T('F32', '[200,16]', 0, 12800), B)
st('header_length_zero', '', B)
st_bytes('header_length_beyond_file', struct.pack('<Q', 1 << 40) + b'{}')
st_bytes('shorter_than_8_bytes', b'\x02\0\0')
st('empty_header', '{}', b'')
st('empty_header_with_data', '{}', b'abcd')
st('not_an_object', '[]', b'')
st('metadata_int_value', '{"__metadata__":{"a":1},"x":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('metadata_null', '{"__metadata__":null,"x":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('entry_as_array', '{"x":["F32",[200,16],[0,12800]]}', B)
st('entry_as_short_array', '{"x":["F32",[200,16]]}', B)
st('dtype_as_map', '{"x":{"dtype":{"F32":null},"shape":[200,16],"data_offsets":[0,12800]}}', B)
st('dtype_unknown', one(T('F128', '[200,16]', 0, 12800)), B)
st('dtype_lowercase', one(T('f32', '[200,16]', 0, 12800)), B)
st('f4_whole_bytes_beside_f32', '{"q":%s,"x":%s}' % (T('F4', '[8]', 0, 4), T('F32', '[200,16]', 4, 12804)), b'abcd' + B, tensor='x')
st('f4_half_byte', one(T('F4', '[3]', 0, 2)), b'ab')
st('i32_not_trained_on', one(T('I32', '[200,16]', 0, 12800)), B)
st('empty_tensor', one(T('F32', '[0,16]', 0, 0)), b'')
st('empty_tensors_around', '{"e":%s,"x":%s,"z":%s}' % (T('F32', '[0,16]', 0, 0), T('F32', '[200,16]', 0, 12800), T('F16', '[3,0]', 12800, 12800)), B, tensor='x')
st('huge_dim_beside_zero', '{"e":%s,"x":%s}' % (T('F32', '[0,18446744073709551615]', 0, 0), T('F32', '[200,16]', 0, 12800)), B, tensor='x')
st('size_overflow', one(T('BF16', '[4294967296,4294967296]', 0, 12800)), B)
st_bytes('name_not_utf8', struct.pack('<Q', 52) + b'{"\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' + b'a' * 8)
st('name_escaped_unicode', '{"\\u00e9\\ud83d\\ude00":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('name_lone_surrogate', '{"\\ud800":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('control_character_in_string', '{"x\ty":%s}' % T('F32', '[200,16]', 0, 12800), B)
st('nested_200k_deep', '{"x":' + '[' * 200000 + ']' * 200000 + '}', b'')
st('nested_127_in_ignored_key', '{"x":{"z":%s,"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}' % ('[' * 125 + ']' * 125), B)
st('nested_128_in_ignored_key', '{"x":{"z":%s,"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}' % ('[' * 126 + ']' * 126), B)
st('number_1e400_ignored_key', '{"x":{"z":1e400,"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('number_max_double_ignored_key', '{"x":{"z":1.7976931348623157e308,"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('number_rounds_past_max_ignored_key', '{"x":{"z":1.7976931348623158e308,"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('number_tiny_ignored_key', '{"x":{"z":-1e-400,"dtype":"F32","shape":[200,16],"data_offsets":[0,12800]}}', B)
st('truncated_data', one(T('F32', '[200,16]', 0, 12800)), B[:-4])

# ---- npy: the reference is numpy.load; aetrain reads float32, float64, float16 and uint8
# (÷255) as float32, so the expected values are numpy's array converted the same way.
def npy(name, text, payload, version=(1, 0), pad=True):
    t = text.encode('latin1' if version < (3, 0) else 'utf8') if isinstance(text, str) else text
    size = 2 if version == (1, 0) else 4
    if pad:
        t += b' ' * ((64 - (8 + size + len(t) + 1) % 64) % 64) + b'\n'
    head = b'\x93NUMPY' + bytes(version) + len(t).to_bytes(size, 'little')
    path = f'{d}/{name}.npy'
    open(path, 'wb').write(head + t + payload)
    entry = {'name': name, 'kind': 'npy', 'file': path}
    try:
        a = np.load(path)
        entry['accepted'] = True
        entry['dtype'] = a.dtype.str
        trainable = a.dtype.names is None and a.dtype.shape == () and (a.dtype.kind == 'f' and a.dtype.itemsize in (2, 4, 8) or a.dtype.kind == 'u' and a.dtype.itemsize == 1)
        if trainable:
            v = a.astype('<f4') / np.float32(255) if a.dtype.kind == 'u' else a.astype('<f4')
            np.ascontiguousarray(v, '<f4').tofile(path + '.f32')
            entry['values'] = path + '.f32'
            entry['shape'] = list(a.shape)
    except Exception as e:
        entry['accepted'] = False
        entry['why'] = str(e)[:160]
    cases.append(entry)

H = lambda descr="'<f4'", fortran='False', shape='(3, 4)': "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
P = rng.normal(size=12).astype('<f4').tobytes()
npy('npy_v1', H(), P)
npy('npy_v2', H(), P, (2, 0))
npy('npy_v3_utf8', "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'é': 1}".replace(", 'é': 1", ''), P, (3, 0))
npy('npy_v3_non_ascii_key', "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'é': 1}", P, (3, 0))
npy('npy_v4', H(), P, (4, 0))
npy('npy_v1_1', H(), P, (1, 1))
npy('npy_no_padding', H(), P, pad=False)
npy('npy_trailing_bytes', H(), P + b'extra')
npy('npy_short_data', H(), P[:-1])
npy('npy_dup_descr_last_wins', "{'descr': '<f8', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}", P)
npy('npy_dup_shape_last_wins', "{'shape': (2, 2), 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}", P)
npy('npy_dup_overwritten_odd_value', "{'shape': 1+2j, 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}", P)
npy('npy_shape_trailing_comma', H(shape='(12,)'), P)
npy('npy_shape_two_trailing_commas', H(shape='(12,,)'), P)
npy('npy_shape_2d_trailing_comma', H(shape='(3, 4,)'), P)
npy('npy_shape_no_tuple', H(shape='(12)'), P)
npy('npy_shape_list', H(shape='[3, 4]'), P)
npy('npy_shape_spaces', H(shape='(  3 ,\t4  )'), P)
npy('npy_shape_hex_underscore_plus', H(shape='(0x3, +4)'), P)
npy('npy_shape_1_2', H(shape='(1_2,)'), P)
npy('npy_shape_leading_zero', H(shape='(03, 4)'), P)
npy('npy_shape_float', H(shape='(3.0, 4)'), P)
npy('npy_shape_bool', H(shape='(True, 12)'), P)
npy('npy_shape_negative', H(shape='(-1, 4)'), P)
npy('npy_shape_scalar', H(shape='()'), P[:4])
npy('npy_shape_zero_rows', H(shape='(0, 4)'), b'')
npy('npy_shape_overflow', H(shape='(4294967296, 4294967296)'), P)
npy('npy_py2_long_v1', H(shape='(3L, 4L)'), P)
npy('npy_py2_long_v3', H(shape='(3L, 4L)'), P, (3, 0))
npy('npy_fortran_2d', H(fortran='True'), P)
npy('npy_fortran_3d', H(fortran='True', shape='(2, 3, 2)'), P)
npy('npy_fortran_one', H(fortran='1'), P)
npy('npy_fortran_none', H(fortran='None'), P)
npy('npy_big_endian_f4', H(descr="'>f4'"), np.frombuffer(P, '<f4').astype('>f4').tobytes())
npy('npy_big_endian_f8', H(descr="'>f8'"), np.frombuffer(P, '<f4').astype('>f8').tobytes())
npy('npy_big_endian_f2', H(descr="'>f2'"), np.frombuffer(P, '<f4').astype('>f2').tobytes())
npy('npy_big_endian_fortran', H(descr="'>f4'", fortran='True'), np.frombuffer(P, '<f4').astype('>f4').tobytes())
npy('npy_f8', H(descr="'<f8'"), (rng.normal(size=12) * 1e3).astype('<f8').tobytes())
npy('npy_f2', H(descr="'<f2'"), rng.normal(size=12).astype('<f2').tobytes())
npy('npy_u1', H(descr="'|u1'"), bytes(range(0, 240, 20)))
npy('npy_descr_unprefixed', H(descr="'f4'"), P)
npy('npy_descr_name', H(descr="'float32'"), P)
npy('npy_descr_float_is_f8', H(descr="'float'"), (rng.normal(size=12)).astype('<f8').tobytes())
npy('npy_descr_double_quotes', '{"descr": "<f4", "fortran_order": False, "shape": (3, 4)}', P)
npy('npy_descr_concatenated', H(descr="'<' \"f4\""), P)
npy('npy_descr_escaped', H(descr="'\\x3cf4'"), P)
npy('npy_descr_raw_prefix', H(descr="r'<f4'"), P)
npy('npy_descr_bytes', H(descr="b'<f4'"), P)
npy('npy_descr_i4', H(descr="'<i4'"), P)
npy('npy_descr_structured', H(descr="[('a', '<f4')]", shape='(12,)'), P)
npy('npy_extra_key', "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 'x': 1}", P)
npy('npy_missing_key', "{'descr': '<f4', 'shape': (3, 4)}", P)
npy('npy_comment_and_newlines', "{'descr': '<f4', # a comment\n 'fortran_order':\n False, 'shape': (3, 4)}", P)
npy('npy_leading_newline', '\n' + H(), P)
npy('npy_indented_second_line', '\n  ' + H(), P)
npy('npy_nul_in_header', H() + '\0', P)
npy('npy_header_too_long', H() + ' ' * 10000, P)
npy('npy_not_a_dict', "[1, 2]", P)
npy('npy_unhashable_key', "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), [1]: 2}", P)
npy('npy_name_not_literal', H(fortran='false'), P)
odd = lambda value: "{'shape': %s, 'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}" % value
npy('npy_overwritten_set_list_ellipsis', odd("[{1, (2, 'a')}, [[]], ..., set(), -1.5e3, 0o17, b'x' b'y', None]"), P)
npy('npy_overwritten_double_sign', odd('-(-3)'), P)
npy('npy_overwritten_unhashable_set_item', odd('{1, [2]}'), P)
npy('npy_overwritten_nested_150', odd('[' * 150 + ']' * 150), P)
npy('npy_overwritten_nested_250', odd('[' * 250 + ']' * 250), P)
npy('npy_overwritten_f_string', odd("f'x'"), P)
npy('npy_int_key', "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), 1: 2}", P)
npy('npy_descr_unicode_prefix', H(descr="u'<f4'"), P)
npy('npy_shape_minus_zero', H(shape='(3, -0)'), b'')
npy('npy_shape_parenthesized_dims', H(shape='((3), (+4))'), P)

json.dump(cases, open(f'{d}/manifest.json', 'w'))
"""#)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("manifest.json")))
        guard let cases = manifest as? [[String: Any]] else { return XCTFail("manifest.json is not a list of cases") }
        XCTAssertGreaterThanOrEqual(cases.count, 40)
        XCTAssertGreaterThanOrEqual(cases.filter { $0["kind"] as? String == "safetensors" }.count, 25)

        var table: [(name: String, reference: String, ours: String, agree: Bool)] = []
        for c in cases {
            let name = c["name"] as? String ?? "?", path = c["file"] as? String ?? "?"
            let reference = (c["accepted"] as? Bool) == true ? "accept" + ((c["shape"] as? [Any]).map { " \($0.map { "\($0)" }.joined(separator: "×"))" } ?? "")
                : "refuse: " + (c["why"] as? String ?? "")
            let (ours, agree) = c["kind"] as? String == "npy" ? checkNPY(c, path: path) : checkSafeTensors(c, path: path)
            table.append((name, reference, ours, agree))
        }
        let width = table.map(\.name.count).max() ?? 0
        let lines = table.map { ($0.agree ? "  " : "✗ ") + $0.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  reference: \($0.reference.prefix(70))\n"
            + String(repeating: " ", count: width + 4) + "aetrain:   \($0.ours.prefix(150))" }
        let disagreements = table.filter { !$0.agree }.map(\.name)
        XCTAssertTrue(disagreements.isEmpty, "\(disagreements.count) of \(table.count) files read differently from the reference: \(disagreements)\n"
                      + lines.joined(separator: "\n"))
    }

    /// The values the reference yields, as float32 bit patterns.
    func referenceBits(_ c: [String: Any]) throws -> [UInt32] {
        let data = try Data(contentsOf: URL(fileURLWithPath: c["values"] as? String ?? ""))
        return data.withUnsafeBytes { raw in (0..<(raw.count / 4)).map { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)) } }
    }

    func shape(_ c: [String: Any]) -> [Int] { (c["shape"] as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } ?? [] }

    /// A refusal is one line that names the file.
    func oneLine(_ error: Error, _ path: String) -> (String, Bool) {
        let message = (error as? UserError)?.message ?? "\(error)"
        return ("refuse: " + message.replacingOccurrences(of: path, with: "FILE"), message.hasPrefix(path) && !message.contains("\n"))
    }

    func checkSafeTensors(_ c: [String: Any], path: String) -> (String, Bool) {
        let header: SafeTensorsHeader
        do { header = try SafeTensorsHeader.read(path: path) } catch {
            let (text, ok) = oneLine(error, path)
            return (text, ok && (c["accepted"] as? Bool) == false)
        }
        guard (c["accepted"] as? Bool) == true else { return ("accept", false) }
        let ours = header.tensors.map { [$0.name, $0.dtype, $0.shape.map(String.init).joined(separator: ",")] }.sorted { $0.lexicographicallyPrecedes($1) }
        let theirs = (c["tensors"] as? [[Any]] ?? []).map { t in
            [t[0] as? String ?? "?", t[1] as? String ?? "?", (t[2] as? [String] ?? []).joined(separator: ",")]
        }.sorted { $0.lexicographicallyPrecedes($1) }
        guard ours == theirs else { return ("accept with tensors \(ours), not \(theirs)", false) }
        let tensor = c["tensor"] as? String
        guard c["values"] != nil else {
            // No data to compare: a dtype aetrain does not train on must be refused by the reader.
            guard let t = tensor.flatMap({ header.tensor(named: $0) }) ?? (header.tensors.count == 1 ? header.tensors.first : nil) else {
                return ("accept \(header.tensors.count) tensors", true)
            }
            do { _ = try SafeTensorsReader(path: path, tensor: tensor); return ("accept the header and read \(t.dtype) as data", false) } catch {
                let (text, ok) = oneLine(error, path)
                return ("header accepted; reader " + text, ok && SafeTensorsReader.Element(rawValue: t.dtype) == nil)
            }
        }
        do {
            let reader = try SafeTensorsReader(path: path, tensor: tensor)
            var values = [Float](repeating: .nan, count: reader.shape.reduce(1, *))
            try values.withUnsafeMutableBufferPointer { try reader.readRows(0..<(reader.shape.first ?? 1), into: $0) }
            let expected = try referenceBits(c)
            let same = reader.shape == shape(c) && values.map(\.bitPattern) == expected
            return ("accept \(reader.shape.map(String.init).joined(separator: "×")) \(reader.element)" + (same ? "" : " with other values"), same)
        } catch {
            return (oneLine(error, path).0, false)
        }
    }

    func checkNPY(_ c: [String: Any], path: String) -> (String, Bool) {
        let values: [Float], header: NPYHeader
        do {
            let reader = try NPYReader(path: path)
            header = reader.header
            values = try reader.readAll()
        } catch {
            let (text, ok) = oneLine(error, path)
            // numpy reads it, aetrain cannot train on its dtype: refused, and said so.
            let untrainable = (c["accepted"] as? Bool) == true && c["values"] == nil && text.contains("dtype")
            return (text + (untrainable ? " (a dtype aetrain does not train on)" : ""), ok && ((c["accepted"] as? Bool) == false || untrainable))
        }
        guard (c["accepted"] as? Bool) == true, c["values"] != nil else { return ("accept \(header.shape)", false) }
        let same = header.shape == shape(c) && values.map(\.bitPattern) == (try? referenceBits(c))
        return ("accept \(header.shape.map(String.init).joined(separator: "×")) \(header.element.rawValue)" + (header.bigEndian ? " big-endian" : "")
                + (header.fortranOrder ? " Fortran order" : "") + (same ? "" : " with other values"), same)
    }
}
