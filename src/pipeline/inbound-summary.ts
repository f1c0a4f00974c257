import type { JobPayload } from './jobs.js';

/**
 * A customer message as the message log shows it: its type and a short text, never media bytes (a picture is
 * `[图片]`, a file `[文件]`, a link its title and URL).
 * @returns null for jobs that are not a customer message (a kf welcome)
 */
export function inboundSummary(p: JobPayload): { type: string; content: string } | null {
  if (p.channel === 'kf') {
    switch (p.type) {
      case 'kf.text':
        return { type: 'text', content: p.content };
      case 'kf.media':
        return { type: p.msgtype, content: p.msgtype === 'image' ? '[图片]' : '[文件]' };
      case 'kf.link':
        return { type: 'link', content: [p.title, p.url].filter(Boolean).join(' ') };
      case 'kf.described':
        return { type: p.msgtype, content: p.content };
      case 'kf.unsupported':
        return { type: p.msgtype, content: `[${p.msgtype}]` };
      case 'kf.welcome':
        return null;
    }
  }
  if (p.channel === 'mp') {
    if (p.media_id) return { type: p.msgtype, content: '[图片]' };
    return { type: p.msgtype, content: p.content ?? `[${p.msgtype}]` };
  }
  if (p.channel === 'bot') {
    const marks = [...p.images.map(() => '[图片]'), ...(p.file ? ['[文件]'] : [])];
    const content = [p.text, ...marks].filter(Boolean).join(' ');
    return { type: p.msgtype, content: content || `[${p.msgtype}]` };
  }
  return null;
}
