// Inline route constraints of ASP.NET Core routing (DefaultInlineConstraintResolver's map), checked
// against the decoded route value as ASP.NET does (invariant culture).

export class RouteTemplateError extends Error {}

type Check = (value: string, args: string[]) => boolean;

const isInteger = (min: bigint, max: bigint) => (value: string) => {
  if (!/^[+-]?\d+$/.test(value.trim())) return false;
  const n = BigInt(value.trim());
  return n >= min && n <= max;
};
const isNumber = (value: string) => value.trim() !== '' && Number.isFinite(Number(value));
const toNumber = (arg: string | undefined) => Number(arg);

const CHECKS: Record<string, { arity: number[]; check: Check }> = {
  int: { arity: [0], check: isInteger(-(2n ** 31n), 2n ** 31n - 1n) },
  long: { arity: [0], check: isInteger(-(2n ** 63n), 2n ** 63n - 1n) },
  bool: { arity: [0], check: (value) => /^(true|false)$/i.test(value.trim()) },
  guid: {
    arity: [0],
    check: (value) =>
      /^(\{)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}(\})?$/i.test(value) ||
      /^\([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)$/i.test(value),
  },
  datetime: { arity: [0], check: (value) => !Number.isNaN(Date.parse(value)) },
  decimal: { arity: [0], check: isNumber },
  double: { arity: [0], check: isNumber },
  float: { arity: [0], check: isNumber },
  alpha: { arity: [0], check: (value) => /^[a-z]*$/i.test(value) },
  required: { arity: [0], check: (value) => value !== '' },
  nonfile: { arity: [0], check: (value) => !/\.[^./]+$/.test(value.split('/').pop() ?? '') },
  file: { arity: [0], check: (value) => /\.[^./]+$/.test(value.split('/').pop() ?? '') },
  min: {
    arity: [1],
    check: (value, [min]) => isInteger(-(2n ** 63n), 2n ** 63n - 1n)(value) && Number(value) >= toNumber(min),
  },
  max: {
    arity: [1],
    check: (value, [max]) => isInteger(-(2n ** 63n), 2n ** 63n - 1n)(value) && Number(value) <= toNumber(max),
  },
  range: {
    arity: [2],
    check: (value, [min, max]) =>
      isInteger(-(2n ** 63n), 2n ** 63n - 1n)(value) &&
      Number(value) >= toNumber(min) &&
      Number(value) <= toNumber(max),
  },
  length: {
    arity: [1, 2],
    check: (value, args) =>
      args.length === 1
        ? value.length === toNumber(args[0])
        : value.length >= toNumber(args[0]) && value.length <= toNumber(args[1]),
  },
  minlength: { arity: [1], check: (value, [min]) => value.length >= toNumber(min) },
  maxlength: { arity: [1], check: (value, [max]) => value.length <= toNumber(max) },
  regex: {
    arity: [1],
    check: (value, [pattern]) => new RegExp(pattern ?? '', 'i').test(value),
  },
};

function parseConstraint(constraint: string): { name: string; args: string[] } {
  const open = constraint.indexOf('(');
  if (open < 0) return { name: constraint.toLowerCase(), args: [] };
  const name = constraint.slice(0, open).toLowerCase();
  const inner = constraint.slice(open + 1, constraint.lastIndexOf(')'));
  // regex takes its argument whole; the others are comma-separated numbers.
  return { name, args: name === 'regex' ? [inner] : inner.split(',').map((arg) => arg.trim()) };
}

export function validateConstraint(constraint: string, template: string): void {
  const { name, args } = parseConstraint(constraint);
  const known = CHECKS[name];
  if (!known || !known.arity.includes(args.length)) {
    throw new RouteTemplateError(`The route constraint '${constraint}' in "${template}" is not supported.`);
  }
}

export function checkConstraint(constraint: string, value: string): boolean {
  const { name, args } = parseConstraint(constraint);
  return CHECKS[name]?.check(value, args) ?? false;
}
