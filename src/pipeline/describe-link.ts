/** A link for the agent: what WeChat shows (title, description, url) and, when readable, the page itself. */
export function describeLink(link: { title: string; desc: string; url: string }, page: { title: string | null; text: string } | null): string {
  const head = [`[客户发送了链接] ${link.title || page?.title || ''}`.trim(), link.desc, link.url].filter(Boolean).join('\n');
  return page?.text ? `${head}\n\n页面内容：\n${page.text}` : head;
}
