/** Chinese by default; English by the toggle in the header, remembered in localStorage. */
import { useEffect, useState } from 'preact/hooks';

export type Lang = 'zh' | 'en';

const zh = {
  title: '微信 AI 桥 · 控制台',
  skip: '跳到主要内容',
  navConversations: '会话',
  navFailures: '发送失败',
  navStatus: '状态',
  logout: '退出登录',
  langToggle: 'English',
  langToggleLabel: 'Switch to English',
  loading: '加载中…',
  loginTitle: '登录控制台',
  loginToken: '管理令牌 (ADMIN_TOKEN)',
  loginSubmit: '登录',
  loginFailed: '令牌错误 / wrong token',
  loginLimited: '尝试次数过多，请一分钟后再试 / too many attempts, try again in a minute',
  loginHint: '令牌即服务器的 ADMIN_TOKEN。',
  live: '实时',
  liveOff: '实时连接中断，正在重连…',
  filterChannel: '渠道',
  filterAccount: '账号',
  filterState: '状态',
  filterAll: '全部',
  search: '搜索消息文本',
  searchButton: '搜索',
  clear: '清除',
  stateBot: '机器人',
  stateHuman: '人工',
  stateUnknown: '…',
  colCustomer: '客户',
  colLast: '最后消息',
  colWaiting: '等待',
  colState: '状态',
  noConversations: '没有会话。',
  notWaiting: '—',
  refresh: '刷新',
  back: '← 返回会话列表',
  identities: '身份',
  firstSeen: '首次',
  lastSeen: '最近',
  messages: '消息',
  loadOlder: '加载更早的消息',
  noMessages: '没有消息。',
  inbound: '客户',
  outbound: '回复',
  agent: '智能体',
  latency: 'LLM 耗时',
  tokens: 'tokens',
  errcode: '错误码',
  actions: '操作',
  reset: '重置',
  resetConfirmTitle: '重置会话？',
  resetConfirmText: '清除该客户与所有智能体的对话上下文（与客户发送“重置”相同）。消息记录保留。',
  confirm: '确认',
  cancel: '取消',
  resetDone: '已重置会话。',
  reply: '人工回复',
  replyPlaceholder: '输入回复内容，通过客户的渠道发送；发送后机器人暂停，直到交还机器人。',
  send: '发送',
  replyDone: '已发送；会话转为人工。',
  replyNoChannel: '该渠道不支持人工回复（仅微信客服和公众号）',
  handoff: '转人工',
  handoffDone: '已转人工。',
  handoffKfOnly: '仅微信客服 (kf) 会话可以转人工',
  resume: '交还机器人',
  resumeDone: '机器人已恢复应答。',
  failed: '失败',
  working: '处理中…',
  failuresTitle: '发送失败的回复',
  noFailures: '没有发送失败的回复。',
  colTime: '时间',
  colReason: '原因',
  colParts: '内容',
  colReplays: '重发次数',
  partsSent: '已发送',
  replay: '重发',
  replayDone: '已重发。',
  replayFailed: '重发失败',
  loadMore: '加载更多',
  statusTitle: '运行状态',
  doctorTitle: '配置体检',
  doctorHint: '用真实环境检查配置：各渠道的 access_token、每个智能体的一句话试答、Redis、MySQL 和时钟（与 npm run doctor 相同）。',
  doctorRun: '开始体检',
  doctorRunning: '检查中…',
  doctorFix: '解决办法：',
  lastHour: '最近一小时',
  received: '收到',
  answered: '已回答',
  fallback: '兜底回复',
  failedCount: '失败',
  perMinute: '每分钟',
  ackP99: '回调确认 p99',
  llm: '大模型',
  p95: 'p95',
  breaker: '熔断',
  breakerOpen: '打开',
  breakerClosed: '正常',
  queue: '队列',
  waiting: '等待',
  active: '处理中',
  delayed: '延迟',
  lagP99: '排队延迟 p99',
  health: '依赖',
  up: '正常',
  down: '故障',
  off: '未启用',
  ready: '就绪',
  notReady: '未就绪',
  version: '版本',
  uptime: '运行时长',
  role: '角色',
  store: '存储',
  log: '日志',
  channels: '渠道',
  agents: '智能体',
  updated: '更新于',
  none: '—',
  summaryMissing: '服务器未提供 /admin/summary。',
  errorPrefix: '出错：',
  close: '关闭',
  dirIn: '收',
  dirOut: '发',
  ago: '前',
  s: '秒',
  m: '分',
  h: '小时',
  d: '天',
};

export type Key = keyof typeof zh;

const en: Record<Key, string> = {
  title: 'WeChat AI Bridge · Console',
  skip: 'Skip to main content',
  navConversations: 'Conversations',
  navFailures: 'Failures',
  navStatus: 'Status',
  logout: 'Log out',
  langToggle: '中文',
  langToggleLabel: '切换到中文',
  loading: 'Loading…',
  loginTitle: 'Sign in to the console',
  loginToken: 'Admin token (ADMIN_TOKEN)',
  loginSubmit: 'Sign in',
  loginFailed: '令牌错误 / wrong token',
  loginLimited: '尝试次数过多 / too many attempts, try again in a minute',
  loginHint: "The token is the server's ADMIN_TOKEN.",
  live: 'Live',
  liveOff: 'Live updates lost, reconnecting…',
  filterChannel: 'Channel',
  filterAccount: 'Account',
  filterState: 'State',
  filterAll: 'All',
  search: 'Search message text',
  searchButton: 'Search',
  clear: 'Clear',
  stateBot: 'bot',
  stateHuman: 'human',
  stateUnknown: '…',
  colCustomer: 'Customer',
  colLast: 'Last message',
  colWaiting: 'Waiting',
  colState: 'State',
  noConversations: 'No conversations.',
  notWaiting: '—',
  refresh: 'Refresh',
  back: '← Back to conversations',
  identities: 'Identities',
  firstSeen: 'First seen',
  lastSeen: 'Last seen',
  messages: 'Messages',
  loadOlder: 'Load older messages',
  noMessages: 'No messages.',
  inbound: 'Customer',
  outbound: 'Reply',
  agent: 'Agent',
  latency: 'LLM time',
  tokens: 'tokens',
  errcode: 'errcode',
  actions: 'Actions',
  reset: 'Reset',
  resetConfirmTitle: 'Reset the conversation?',
  resetConfirmText: "Clears the customer's conversation with every agent (as if they sent the reset keyword). The log is kept.",
  confirm: 'Confirm',
  cancel: 'Cancel',
  resetDone: 'Conversation reset.',
  reply: 'Reply as operator',
  replyPlaceholder: "Your reply goes out through the customer's channel; the bot stays quiet until you give the conversation back.",
  send: 'Send',
  replyDone: 'Sent; the conversation is now with a human.',
  replyNoChannel: 'This channel has no operator reply (WeCom kf and Official Accounts only)',
  handoff: 'Hand to a human',
  handoffDone: 'Handed to a human.',
  handoffKfOnly: 'Only WeCom customer-service (kf) conversations can be handed to a human',
  resume: 'Give back to the bot',
  resumeDone: 'The bot answers again.',
  failed: 'Failed',
  working: 'Working…',
  failuresTitle: 'Replies that could not be delivered',
  noFailures: 'No failed replies.',
  colTime: 'Time',
  colReason: 'Reason',
  colParts: 'Content',
  colReplays: 'Replays',
  partsSent: 'sent',
  replay: 'Replay',
  replayDone: 'Replayed.',
  replayFailed: 'Replay failed',
  loadMore: 'Load more',
  statusTitle: 'Status',
  doctorTitle: 'Configuration check',
  doctorHint: 'Checks the configuration against the real world: each channel\'s access_token, a one-line probe of each agent, Redis, MySQL and the clock (the same as npm run doctor).',
  doctorRun: 'Run the check',
  doctorRunning: 'Checking…',
  doctorFix: 'Fix: ',
  lastHour: 'Last hour',
  received: 'Received',
  answered: 'Answered',
  fallback: 'Fallback',
  failedCount: 'Failed',
  perMinute: 'Per minute',
  ackP99: 'Callback ack p99',
  llm: 'LLM',
  p95: 'p95',
  breaker: 'Breaker',
  breakerOpen: 'open',
  breakerClosed: 'closed',
  queue: 'Queue',
  waiting: 'Waiting',
  active: 'Active',
  delayed: 'Delayed',
  lagP99: 'Queue lag p99',
  health: 'Dependencies',
  up: 'up',
  down: 'down',
  off: 'off',
  ready: 'ready',
  notReady: 'not ready',
  version: 'Version',
  uptime: 'Uptime',
  role: 'Role',
  store: 'Store',
  log: 'Log',
  channels: 'Channels',
  agents: 'Agents',
  updated: 'Updated',
  none: '—',
  summaryMissing: 'The server has no /admin/summary.',
  errorPrefix: 'Error: ',
  close: 'Close',
  dirIn: 'in',
  dirOut: 'out',
  ago: ' ago',
  s: 's',
  m: 'm',
  h: 'h',
  d: 'd',
};

const dicts: Record<Lang, Record<Key, string>> = { zh, en };
const STORAGE_KEY = 'console.lang';

function stored(): Lang | null {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return v === 'zh' || v === 'en' ? v : null;
  } catch {
    return null;
  }
}

let lang: Lang = stored() ?? 'zh';
const listeners = new Set<() => void>();

function apply(): void {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = dicts[lang].title;
  for (const l of listeners) l();
}

/** The text of `key` in the current language. */
export function t(key: Key): string {
  return dicts[lang][key];
}

export function currentLang(): Lang {
  return lang;
}

/** Switches language; `remember` stores the choice (the toggle does; the server's hint does not). */
export function setLang(next: Lang, remember = true): void {
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, next);
    } catch {
      // private mode: the choice lasts this page only
    }
  }
  lang = next;
  apply();
}

/** Uses the server's `lang` hint unless the operator picked one. */
export function adoptServerLang(hint: string | undefined): void {
  if (stored() || !hint) return;
  if (hint.startsWith('en')) setLang('en', false);
  else if (hint.startsWith('zh')) setLang('zh', false);
}

/** Re-renders the calling component when the language changes. */
export function useLang(): Lang {
  const [, force] = useState(0);
  useEffect(() => {
    const l = () => force((n) => n + 1);
    listeners.add(l);
    return () => void listeners.delete(l);
  }, []);
  return lang;
}

apply();

/** "3分" / "3m": a short duration. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}${t('s')}`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}${t('m')}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}${t('h')}${m % 60 ? ` ${m % 60}${t('m')}` : ''}`;
  return `${Math.floor(h / 24)}${t('d')}`;
}

/** A local date-time, short. */
export function when(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const opts: Intl.DateTimeFormatOptions = sameDay
    ? { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }
    : { month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false };
  return d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', opts);
}
