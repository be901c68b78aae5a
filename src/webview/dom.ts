/**
 * Element builders of the panel's page: `el('p', { class: 'meta' }, 'text', child)` and the same for SVG. Every
 * chart is built from these (no innerHTML: the strict CSP and the data's strings stay inert).
 */

export type Attrs = Record<string, string | number | boolean>;
export type Child = Node | string | null | undefined;

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill<E extends Element>(e: E, attrs: Attrs | undefined, children: Child[]): E {
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, String(v));
  for (const c of children) if (c !== undefined && c !== null) e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return e;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K] {
  return fill(document.createElement(tag), attrs, children);
}

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, ...children: Child[]): SVGElementTagNameMap[K] {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** A section's content box (`<section id=…><h2/><div class="content"/></section>` in the panel's HTML). */
export function contentOf(section: HTMLElement): HTMLElement {
  const c = section.querySelector<HTMLElement>('.content');
  if (!c) throw new Error(`section #${section.id} has no .content`);
  return c;
}
