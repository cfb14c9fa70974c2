/** sha256() and sha256File(): standard digests, streamed files equal one-shot digests. */

import assert from "node:assert/strict";
import { sha256, sha256File } from "../../pipeline/hash.ts";
import { makeTestDir } from "../_tmp.ts";

Deno.test('sha256() gives the FIPS 180-2 digests of "abc" and of the empty string', () => {
  assert.equal(sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(
    sha256(new Uint8Array()),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
});

Deno.test("sha256File() streams a multi-chunk file to the same digest as hashing it whole", async () => {
  const dir = await makeTestDir("hash");
  const bytes = new Uint8Array(3 * 1024 * 1024 + 7); // spans four 1 MiB chunks
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff;
  await Deno.writeFile(`${dir}/big.bin`, bytes);
  assert.deepEqual(await sha256File(`${dir}/big.bin`), {
    sha256: sha256(bytes),
    bytes: bytes.length,
  });
  await Deno.writeFile(`${dir}/empty`, new Uint8Array());
  assert.equal((await sha256File(`${dir}/empty`)).bytes, 0);
});
