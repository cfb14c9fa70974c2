import assert from "node:assert/strict";
import {
  openSafetensors,
  readSafetensors,
  SafetensorsError,
  type TensorSource,
  writeSafetensors,
} from "../../kernels/safetensors.ts";
import { makeTestDir } from "../_tmp.ts";

const dir = await makeTestDir("safetensors");
let fileCounter = 0;

/** A fresh file path inside the test directory. */
function scratch(name = "t"): string {
  return `${dir}/${name}-${fileCounter++}.safetensors`;
}

/** Bytes of a file laid out by hand: u64 LE header length, header text, data bytes. */
function fileBytes(header: string, data: readonly number[] | Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

/** Write a hand-made file and return the error opening (and reading all of) it gives. */
async function openError(header: string, data: readonly number[] | Uint8Array): Promise<Error> {
  const path = scratch("bad");
  await Deno.writeFile(path, fileBytes(header, data));
  try {
    await readSafetensors(path);
  } catch (e) {
    assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${e}`);
    assert.ok(e.message.startsWith(path), `message should start with the path: ${e.message}`);
    return e;
  }
  throw new Error(`opening ${header} did not fail`);
}

/** The raw 32-bit patterns of a Float32Array, so NaN payloads and -0 compare exactly. */
function bitsOf(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

Deno.test("readSafetensors() parses a file written byte for byte from the format description", async () => {
  // Header written by hand: metadata, an I32 [2,2], a BF16 [3] and an F32 scalar, data in
  // offset order; the header is padded with spaces to a multiple of 8 bytes.
  let header = '{"__metadata__":{"format":"pt"},' +
    '"ints":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},' +
    '"half":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},' +
    '"one":{"dtype":"F32","shape":[],"data_offsets":[22,26]}}';
  header += " ".repeat((8 - header.length % 8) % 8);
  const data = [
    ...[1, 0, 0, 0, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80], // 1, 2, -1, -2^31
    ...[0x80, 0x3f, 0x20, 0xc0, 0x80, 0x7f], // bf16 1.0, -2.5, +inf
    ...[0x00, 0x00, 0xc0, 0x3f], // f32 1.5
  ];
  const path = scratch("by-hand");
  await Deno.writeFile(path, fileBytes(header, data));

  using file = await openSafetensors(path);
  assert.deepEqual(file.metadata, { format: "pt" });
  assert.deepEqual(file.names(), ["ints", "half", "one"]);
  assert.deepEqual(file.info("half"), {
    name: "half",
    dtype: "BF16",
    dims: [3],
    begin: 16,
    end: 22,
  });
  const ints = await file.read("ints");
  assert.equal(ints.dtype, "int32");
  assert.deepEqual(ints.dims, [2, 2]);
  assert.deepEqual([...ints.data as Int32Array], [1, 2, -1, -(2 ** 31)]);
  const half = await file.read("half");
  assert.equal(half.dtype, "float32");
  assert.deepEqual([...half.data as Float32Array], [1, -2.5, Infinity]);
  const one = await file.read("one");
  assert.deepEqual(one.dims, []);
  assert.deepEqual([...one.data as Float32Array], [1.5]);
});

Deno.test("writeSafetensors() emits the exact bytes the format prescribes", async () => {
  const path = scratch("exact");
  await writeSafetensors(path, {
    b: { dtype: "uint8", dims: [3], data: new Uint8Array([7, 8, 9]) },
    a: { dtype: "int32", dims: [2], data: new Int32Array([1, -1]) },
  });
  // Wider dtypes first, then by name; metadata first; padding to a multiple of 8 with spaces.
  const header = '{"__metadata__":{"format":"pt"},' +
    '"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  const padded = header + " ".repeat((8 - header.length % 8) % 8);
  assert.equal(padded.length % 8, 0);
  const expected = fileBytes(padded, [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 7, 8, 9]);
  assert.deepEqual(await Deno.readFile(path), expected);
});

Deno.test("writeSafetensors() round-trips every loadable dtype bit for bit", async () => {
  const f32 = new Float32Array([0, -0, 1.5, -3.25e-40, 3.4028234e38, Infinity, -Infinity, NaN]);
  bitsOf(f32)[7] = 0x7fa00001; // a NaN with a payload must survive too
  const tensors: Record<string, TensorSource> = {
    "model.embed_tokens.weight": { dtype: "float32", dims: [2, 4], data: f32 },
    f64: { dtype: "float64", dims: [3], data: new Float64Array([Math.PI, -0, 1e-310]) },
    f16bits: { dtype: "float16", dims: [2], data: new Uint16Array([0x3c00, 0x7bff]) },
    i64: { dtype: "int64", dims: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 62n + 5n]) },
    i32: { dtype: "int32", dims: [1, 1, 2], data: new Int32Array([-7, 2 ** 31 - 1]) },
    i8: { dtype: "int8", dims: [2], data: new Int8Array([-128, 127]) },
    u8: { dtype: "uint8", dims: [0], data: new Uint8Array(0) },
    mask: { dtype: "bool", dims: [3], data: new Uint8Array([1, 0, 1]) },
  };
  const path = scratch("roundtrip");
  const written = await writeSafetensors(path, tensors, { metadata: { step: "12" } });
  assert.equal(written.bytes, (await Deno.stat(path)).size);
  const back = await readSafetensors(path);
  assert.deepEqual(new Set(back.keys()), new Set(Object.keys(tensors)));
  const loaded = back.get("model.embed_tokens.weight")!;
  assert.equal(loaded.dtype, "float32");
  assert.deepEqual(bitsOf(loaded.data as Float32Array), bitsOf(f32));
  for (const name of ["f64", "i64", "i32", "i8", "u8", "mask"]) {
    assert.deepEqual(back.get(name), tensors[name], name);
  }
  // Raw float16 bits are written as F16 and, like every 16-bit float, load as float32.
  assert.deepEqual([...back.get("f16bits")!.data as Float32Array], [1, 65504]);
  using file = await openSafetensors(path);
  assert.deepEqual(file.metadata, { step: "12" });
});

Deno.test("writeSafetensors() stores bf16 exactly for representable values and rounds to nearest even", async () => {
  const representable = [1, -2.5, 0.15625, 2 ** -130, -0, 3.3895314e38, Infinity, -Infinity];
  const rounded: [number, number][] = [
    [1 + 2 ** -8, 1], // tie between 1 and 1+2^-7: the even mantissa (1) wins
    [1 + 3 * 2 ** -8, 1 + 2 ** -6], // tie between 1+2^-7 (odd) and 1+2^-6 (even)
    [1 + 2 ** -8 + 2 ** -20, 1 + 2 ** -7], // just above the tie: rounds up
    [-(1 + 2 ** -8 - 2 ** -20), -1], // just below the tie: rounds toward the nearer
    [3.4028235e38, Infinity], // largest f32 is past bf16's largest + half an ulp
  ];
  const input = new Float32Array([...representable, ...rounded.map(([x]) => x), NaN, 0]);
  bitsOf(input)[input.length - 1] = 0xff800001; // a negative signalling NaN: must stay a NaN
  const path = scratch("bf16");
  await writeSafetensors(path, { w: { dtype: "float32", dims: [input.length], data: input } }, {
    float32As: "BF16",
  });
  using file = await openSafetensors(path);
  assert.equal(file.info("w").dtype, "BF16");
  assert.equal(file.info("w").end, input.length * 2);
  const out = (await file.read("w")).data as Float32Array;
  const n = representable.length;
  assert.deepEqual(bitsOf(out.slice(0, n)), bitsOf(new Float32Array(representable)));
  assert.deepEqual([...out.slice(n, n + rounded.length)], rounded.map(([, y]) => y));
  assert.deepEqual([...bitsOf(out.slice(-2))], [0x7fc00000, 0xffc00000]); // quiet, sign kept
});

Deno.test("writeSafetensors() stores f16 exactly for representable values and rounds to nearest even", async () => {
  const representable = [1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14), Infinity];
  const rounded: [number, number][] = [
    [1 + 2 ** -11, 1], // tie: even mantissa
    [1 + 3 * 2 ** -11, 1 + 2 ** -9], // tie: even mantissa, upward
    [70000, Infinity], // past the largest half
  ];
  const input = new Float32Array([...representable, ...rounded.map(([x]) => x)]);
  const path = scratch("f16");
  await writeSafetensors(path, { w: { dtype: "float32", dims: [input.length], data: input } }, {
    float32As: "F16",
  });
  const out = (await readSafetensors(path)).get("w")!.data as Float32Array;
  assert.deepEqual([...out], [...representable, ...rounded.map(([, y]) => y)]);
});

Deno.test("writeSafetensors() converts large bf16 tensors across chunk boundaries", async () => {
  // 5 Mi elements > one 4 Mi conversion chunk on both the write and the read side.
  const n = 5 * 2 ** 20 + 3;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i % 511) - 255; // integers up to 255 are exact in bf16
  const path = scratch("chunks");
  await writeSafetensors(path, { big: { dtype: "float32", dims: [n], data } }, {
    float32As: "BF16",
  });
  const back = (await readSafetensors(path)).get("big")!.data as Float32Array;
  assert.deepEqual(bitsOf(back), bitsOf(data));
  await Deno.remove(path); // 10 MB: do not let reruns pile these up
});

Deno.test("writeSafetensors() produces lazy tensors one at a time, in data order", async () => {
  const calls: string[] = [];
  const lazy = (name: string, value: number): TensorSource => ({
    dtype: "float32",
    dims: [2],
    data: () => {
      calls.push(name);
      return new Float32Array([value, value]);
    },
  });
  const path = scratch("lazy");
  await writeSafetensors(path, new Map([["z", lazy("z", 1)], ["a", lazy("a", 2)]]));
  assert.deepEqual(calls, ["a", "z"]);
  const back = await readSafetensors(path);
  assert.deepEqual([...back.get("z")!.data as Float32Array], [1, 1]);
});

Deno.test("writeSafetensors() leaves nothing behind when a tensor is inconsistent", async () => {
  const path = scratch("atomic");
  await assert.rejects(
    writeSafetensors(path, {
      good: { dtype: "float32", dims: [2], data: new Float32Array(2) },
      "model.norm.weight": { dtype: "float32", dims: [3], data: () => new Float32Array(4) },
    }),
    /tensor "model\.norm\.weight": data has 4 elements, expected 3 for dims \[3\]/,
  );
  await assert.rejects(
    writeSafetensors(path, { w: { dtype: "float32", dims: [1], data: new Float64Array(1) } }),
    /tensor "w": data is a Float64Array, expected a Float32Array for dtype float32/,
  );
  const left = [...Deno.readDirSync(dir)].filter((e) => e.name.startsWith("atomic"));
  assert.deepEqual(left, []);
});

Deno.test("SafetensorsFile.read() serves concurrent reads correctly", async () => {
  const path = scratch("concurrent");
  const tensors: Record<string, TensorSource> = {};
  for (let k = 0; k < 6; k++) {
    tensors[`t${k}`] = { dtype: "int32", dims: [3], data: new Int32Array([k, k + 1, k + 2]) };
  }
  await writeSafetensors(path, tensors);
  using file = await openSafetensors(path);
  const got = await Promise.all(file.names().map((n) => file.read(n)));
  got.forEach((t, k) => assert.deepEqual([...t.data as Int32Array], [k, k + 1, k + 2]));
  assert.throws(() => file.info("t9"), /tensor "t9": no such tensor; the file has t0, t1/);
});

// ----- corrupt files ---------------------------------------------------------------------------

const GOOD_ENTRY = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}';

Deno.test("openSafetensors() rejects files too short for the length prefix", async () => {
  const path = scratch("short");
  await Deno.writeFile(path, new Uint8Array([1, 2, 3]));
  await assert.rejects(openSafetensors(path), /file is 3 bytes, shorter than the 8-byte header/);
});

Deno.test("openSafetensors() rejects header lengths past the limit or the file end", async () => {
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 2n ** 40n, true);
  const p1 = scratch("huge");
  await Deno.writeFile(p1, huge);
  await assert.rejects(openSafetensors(p1), /header length 1099511627776 exceeds the 100000000/);

  const long = fileBytes(`{${GOOD_ENTRY}}`, new Uint8Array(8));
  new DataView(long.buffer).setBigUint64(0, 500n, true);
  const p2 = scratch("long");
  await Deno.writeFile(p2, long);
  await assert.rejects(openSafetensors(p2), /header length 500 runs past the end of the file/);
});

Deno.test("openSafetensors() rejects headers that are not a JSON object of string metadata", async () => {
  assert.match((await openError("[1,2]   ", [])).message, /header starts with "\[1,2\]/);
  assert.match((await openError('{"w": oops}', [])).message, /header is not valid JSON/);
  const meta = await openError(`{"__metadata__":{"step":3},${GOOD_ENTRY}}`, new Array(8).fill(0));
  assert.match(meta.message, /__metadata__\.step is 3, expected a string/);
});

Deno.test("openSafetensors() names the tensor with an unknown dtype", async () => {
  const e = await openError('{"q":{"dtype":"F13","shape":[1],"data_offsets":[0,2]}}', [0, 0]);
  assert.match(e.message, /tensor "q": dtype "F13" is unknown, expected one of BOOL, U8/);
});

Deno.test("openSafetensors() names the tensor whose byte span disagrees with its shape", async () => {
  const e = await openError(
    '{"model.layers.0.mlp.up_proj.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}',
    new Array(20).fill(0),
  );
  assert.match(
    e.message,
    /tensor "model\.layers\.0\.mlp\.up_proj\.weight": data_offsets \[0,20\] span 20 bytes, expected 24 \(shape \[2,3\] × 4 bytes of F32\)/,
  );
});

Deno.test("openSafetensors() rejects overlapping tensors, gaps and trailing bytes", async () => {
  const overlap = await openError(
    `{${GOOD_ENTRY},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
    new Array(8).fill(0),
  );
  assert.match(overlap.message, /tensor "[vw]": data_offsets \[\d,8\] overlap tensor "[vw]"/);
  const gap = await openError(
    `{"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`,
    new Array(8).fill(0),
  );
  assert.match(gap.message, /tensor "v": data_offsets \[4,8\] leave bytes \[0,4\) unused/);
  const trailing = await openError(`{${GOOD_ENTRY}}`, new Array(12).fill(0));
  assert.match(trailing.message, /data section has 12 bytes but the tensors cover 8/);
});

Deno.test("openSafetensors() names the tensor cut off by a truncated file", async () => {
  const path = scratch("whole");
  await writeSafetensors(path, {
    "lm_head.weight": { dtype: "float32", dims: [4, 4], data: new Float32Array(16) },
  });
  const bytes = await Deno.readFile(path);
  const e = await openError(
    new TextDecoder().decode(bytes.subarray(8, bytes.length - 64)),
    bytes.subarray(bytes.length - 64, bytes.length - 10),
  );
  assert.match(e.message, /tensor "lm_head\.weight": data_offsets \[0,64\] run past the end/);
});

Deno.test("openSafetensors() refuses pickle checkpoints by name and by content", async () => {
  const bin = `${dir}/pytorch_model.bin`;
  await Deno.writeFile(bin, new Uint8Array([0x80, 2, 0x7d]));
  await assert.rejects(
    openSafetensors(bin),
    /pytorch_model\.bin: is a pickle checkpoint \(\.bin\); only safetensors are loaded/,
  );
  const zip = scratch("zip");
  await Deno.writeFile(zip, new Uint8Array([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0]));
  await assert.rejects(openSafetensors(zip), /starts like a PyTorch zip\/pickle checkpoint/);
  const pickle = scratch("pickle");
  await Deno.writeFile(pickle, new Uint8Array([0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9]));
  await assert.rejects(openSafetensors(pickle), /starts like a PyTorch zip\/pickle checkpoint/);
});
