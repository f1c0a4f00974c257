/** The operator console: a login form until the session cookie is valid, then conversations, failures, status. */
import { html, render } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { connectLive, csrfToken, disconnectLive, isLive, loadSession, onLive, setUnauthorizedHandler } from './api.js';
import { ConversationView } from './conversation.js';
import { Conversations } from './conversations.js';
import { Failures } from './failures.js';
import { adoptServerLang, currentLang, setLang, t, useLang } from './i18n.js';
import { href, useRoute } from './router.js';
import { StatusPage } from './status.js';
import './style.css';

type Phase = 'loading' | 'login' | 'ready' | 'error';

function LangToggle() {
  const lang = useLang();
  return html`<button
    type="button"
    class="link-button"
    lang=${lang === 'zh' ? 'en' : 'zh-CN'}
    aria-label=${t('langToggleLabel')}
    data-action="lang"
    onClick=${() => setLang(currentLang() === 'zh' ? 'en' : 'zh')}
  >
    ${t('langToggle')}
  </button>`;
}

/** The login form: a real form, so the browser's password manager and a plain POST both work. */
function Login() {
  useLang();
  const why = new URLSearchParams(location.search).get('login');
  return html`<main id="main" class="login">
    <div class="login-top"><${LangToggle} /></div>
    <form method="post" action="/console/login" class="login-card">
      <h1>${t('loginTitle')}</h1>
      ${why === 'failed' ? html`<p class="result result-bad" role="alert" data-testid="login-error">${t('loginFailed')}</p>` : null}
      ${why === 'limited' ? html`<p class="result result-bad" role="alert" data-testid="login-error">${t('loginLimited')}</p>` : null}
      <label for="token">${t('loginToken')}</label>
      <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
      <p class="hint">${t('loginHint')}</p>
      <button type="submit">${t('loginSubmit')}</button>
    </form>
  </main>`;
}

function LiveDot() {
  useLang();
  const [live, setLiveState] = useState(isLive());
  useEffect(() => {
    const off = onLive(setLiveState);
    setLiveState(isLive()); // it may have opened between the render and this effect
    return off;
  }, []);
  return html`<span class=${`live ${live ? 'live-on' : 'live-off'}`} role="status" data-live=${live}>
    <span class="dot" aria-hidden="true"></span>${live ? t('live') : t('liveOff')}
  </span>`;
}

function Shell() {
  useLang();
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // Moving between screens puts the focus on the new screen's heading (keyboard and screen-reader users).
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    requestAnimationFrame(() => main.current?.querySelector<HTMLElement>('h1')?.focus());
  }, [route.name, route.id]);
  const nav = (name: string, to: string, label: string) =>
    html`<a href=${to} aria-current=${route.name === name || (name === 'conversations' && route.name === 'conversation') ? 'page' : undefined}>${label}</a>`;
  let screen;
  switch (route.name) {
    case 'conversation':
      screen = html`<${ConversationView} id=${route.id!} key=${route.id} />`;
      break;
    case 'failures':
      screen = html`<${Failures} />`;
      break;
    case 'status':
      screen = html`<${StatusPage} />`;
      break;
    default:
      screen = html`<${Conversations} params=${route.params} />`;
  }
  return html`<a class="skip" href="#main" onClick=${(e: Event) => {
      e.preventDefault();
      main.current?.querySelector<HTMLElement>('h1')?.focus();
    }}>${t('skip')}</a>
    <header class="top">
      <span class="brand">${t('title')}</span>
      <nav aria-label="main">
        ${nav('conversations', href.conversations(), t('navConversations'))} ${nav('failures', href.failures(), t('navFailures'))}
        ${nav('status', href.status(), t('navStatus'))}
      </nav>
      <span class="top-right">
        <${LiveDot} />
        <${LangToggle} />
        <form method="post" action="/console/logout" class="logout">
          <input type="hidden" name="csrf" value=${csrfToken()} />
          <button type="submit" class="link-button" data-action="logout">${t('logout')}</button>
        </form>
      </span>
    </header>
    <main id="main" ref=${main}>${screen}</main>`;
}

function App() {
  useLang();
  const [phase, setPhase] = useState<Phase>('loading');
  const [error, setError] = useState('');
  useEffect(() => {
    setUnauthorizedHandler(() => {
      disconnectLive();
      setPhase('login');
    });
    loadSession().then(
      (s) => {
        if (!s) return setPhase('login');
        adoptServerLang(s.lang);
        // The login outcome is shown once; a reload should not show it again.
        if (location.search) history.replaceState(null, '', location.pathname + location.hash);
        connectLive();
        setPhase('ready');
      },
      (e: unknown) => {
        setError(String(e));
        setPhase('error');
      },
    );
  }, []);
  if (phase === 'loading') return html`<p class="muted center">${t('loading')}</p>`;
  if (phase === 'login') return html`<${Login} />`;
  if (phase === 'error') return html`<p class="result result-bad center" role="alert">${t('errorPrefix')}${error}</p>`;
  return html`<${Shell} />`;
}

render(html`<${App} />`, document.getElementById('app')!);
