/**
 * Subprocess used by trainer_state_test.ts: saves trainer states to the path given as the first
 * argument in a loop, state k holding one 16 MB tensor filled with k and the update count k. It
 * prints `writing k` when the save has its temporary file open and is about to write the tensor,
 * and `saved k` once the file is in place. The test kills it with SIGKILL part way through a save.
 */
import { saveTrainerState } from "../../kernels/trainer_state.ts";

const path = Deno.args[0];
const SIZE = 4 << 20; // float32 elements: 16 MB, so most of the loop's time is spent writing
for (let k = 1;; k++) {
  const data = new Float32Array(SIZE).fill(k);
  const w = {
    dtype: "float32" as const,
    dims: [SIZE],
    data: () => {
      console.log(`writing ${k}`);
      return data;
    },
  };
  await saveTrainerState(path, { tensors: new Map([["w", w]]), updates: k });
  console.log(`saved ${k}`);
}
