/** One measured figure of a benchmark suite. */
export type BenchResult = {
  name: string;
  value: number;
  unit: string;
  reference?: number;
  ratio?: number;
  target?: string;
};
