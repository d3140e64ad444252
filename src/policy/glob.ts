/** A whole-string match where `*` stands for any run of characters and everything else is literal. */
export function globToRegExp(pattern: string, flags = ''): RegExp {
  const source = pattern
    .split('*')
    .map((literal) => literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, flags);
}
