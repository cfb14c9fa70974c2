/**
 * Subprocess used by webgpu_session_test.ts: compiles a one-node graph on webgpu with whatever
 * driver the environment selects and prints `ok` or the error message on stdout.
 */
import { GraphBuilder } from "../../kernels/builder.ts";
import { compile } from "../../kernels/session.ts";

const b = new GraphBuilder("probe");
b.output(b.exp(b.input("x", "float32", [2])), "y");
try {
  const program = await compile(b.build(), { device: "webgpu", threads: 1 });
  await program.release();
  console.log("ok");
} catch (e) {
  console.log(`${(e as Error).name}: ${(e as Error).message}`);
}
