/**
 * Text descriptions of kf message bodies an agent cannot receive as they are (docs/protocols.md kf §2.4), written
 * for an LLM: short, labelled, Chinese like the customers. Pure functions of the sync_msg item.
 */

/** `location`: `{latitude, longitude, name, address}`. */
export function describeLocation(b: { latitude?: unknown; longitude?: unknown; name?: unknown; address?: unknown }): string {
  const place = [str(b.name), str(b.address)].filter(Boolean).join('，');
  const coords = Number.isFinite(Number(b.latitude)) && Number.isFinite(Number(b.longitude)) ? `（纬度 ${Number(b.latitude)}，经度 ${Number(b.longitude)}）` : '';
  return `[客户发送了位置] ${place || '未命名地点'}${coords}`;
}

/** Characters of flattened chat records given to the agent; longer records are cut (the newest lines are lost). */
const MERGED_MAX_CHARS = 4000;

/**
 * `merged_msg` (forwarded chat records): `{title, item[]: {sender_name, msg_content, send_time, msgtype}}` where
 * `msg_content` is itself JSON text of a message body (`{"text":{"content":"…"}}` for text; other types get a tag).
 */
export function flattenMergedMsg(b: { title?: unknown; item?: unknown }): string {
  const items = Array.isArray(b.item) ? (b.item as Record<string, unknown>[]) : [];
  const lines = items.map((it) => `${str(it.sender_name) || '某人'}：${itemText(it)}`);
  const head = `[客户转发了聊天记录] ${str(b.title) || ''}`.trim();
  const text = [head, ...lines].join('\n');
  return text.length > MERGED_MAX_CHARS ? `${text.slice(0, MERGED_MAX_CHARS)}…` : text;
}

const TYPE_TAGS: Record<string, string> = { image: '[图片]', voice: '[语音]', video: '[视频]', file: '[文件]', link: '[链接]', location: '[位置]' };

function itemText(it: Record<string, unknown>): string {
  const type = str(it.msgtype);
  let body: unknown = it.msg_content;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      return body as string;
    }
  }
  const o = body && typeof body === 'object' ? (body as Record<string, Record<string, unknown> | undefined>) : {};
  if (type === 'text' || o.text) return str(o.text?.content) || '';
  if (type === 'link' || o.link) return `[链接] ${str(o.link?.title)} ${str(o.link?.url)}`.trim();
  return TYPE_TAGS[type] ?? `[${type || '消息'}]`;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}
