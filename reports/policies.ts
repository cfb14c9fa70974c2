/**
 * The policies a report compares and how they are labelled: the base, each trained method (in
 * `train.methods` order, with the labels of the paper's tables), and the base sampled at each
 * lower temperature (`base@t0.5`, …), which tables set apart as references: does a method beat
 * simply sharpening the base?
 *
 * @example
 * ```ts
 * import { policyColumns, policyLabel } from "./policies.ts";
 * policyLabel("high_en"); // "w/ High_En (inferred)"
 * policyLabel("base@t0.5"); // "Base, T = 0.5"
 * policyColumns(["sent", "base@t0.5", "base", "grpo"], ["grpo", "sent"]).map((c) => c.policy);
 * // ["base", "grpo", "sent", "base@t0.5"]
 * ```
 *
 * @module
 */

import { TRAINING_METHODS } from "../stages/_methods.ts";

/** A policy column of a table or a series of a figure. */
export interface PolicyColumn {
  /** Policy name as in `results.json`. */
  policy: string;
  /** Label as printed. */
  label: string;
  /** `main`: the base and the methods (ranked); `reference`: the base at a lower temperature. */
  group: "main" | "reference";
}

const BASE_AT = /^base@t([0-9.]+)$/;

/**
 * Whether a policy is the base or the base at another temperature.
 *
 * @param policy Policy name.
 * @returns True for `base` and `base@t…`.
 */
export function isBasePolicy(policy: string): boolean {
  return policy === "base" || BASE_AT.test(policy);
}

/**
 * The printed label of a policy.
 *
 * @param policy Policy name.
 * @returns The method's table label, "Base", or "Base, T = t".
 */
export function policyLabel(policy: string): string {
  if (policy === "base") return "Base";
  const at = BASE_AT.exec(policy);
  if (at) return `Base, T = ${at[1]}`;
  return TRAINING_METHODS[policy]?.label ?? policy;
}

/**
 * Order the policies of a run into columns: base, methods (config order, then any others in the
 * order seen), then the lower-temperature base rows.
 *
 * @param present Policy names found in the results, in file order.
 * @param methods `train.methods` of the config.
 * @returns The columns.
 */
export function policyColumns(
  present: readonly string[],
  methods: readonly string[],
): PolicyColumn[] {
  const seen = new Set(present);
  const main = [
    ...(seen.has("base") ? ["base"] : []),
    ...methods.filter((m) => seen.has(m)),
    ...present.filter((p) => !isBasePolicy(p) && !methods.includes(p)),
  ];
  const references = present.filter((p) => BASE_AT.test(p));
  return [
    ...[...new Set(main)].map((policy) => ({
      policy,
      label: policyLabel(policy),
      group: "main" as const,
    })),
    ...[...new Set(references)].map((policy) => ({
      policy,
      label: policyLabel(policy),
      group: "reference" as const,
    })),
  ];
}
