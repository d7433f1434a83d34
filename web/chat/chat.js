// The chat page: plain browser JavaScript, no build step. Talks to this gateway's own API
// (same origin) and renders answers as Markdown, sanitised before it touches the DOM.
import { marked } from '/chat/marked.esm.js';
import DOMPurify from '/chat/purify.es.mjs';

const $ = (id) => document.getElementById(id);
const els = {
  sidebar: $('sidebar'),
  toggleSidebar: $('toggle-sidebar'),
  closeSidebar: $('close-sidebar'),
  newChat: $('new-chat'),
  conversations: $('conversations'),
  provider: $('provider'),
  model: $('model'),
  providerNote: $('provider-note'),
  messages: $('messages'),
  status: $('status'),
  composer: $('composer'),
  message: $('message'),
  file: $('file'),
  attachment: $('attachment'),
  attachmentPreview: $('attachment-preview'),
  removeAttachment: $('remove-attachment'),
  send: $('send'),
  stop: $('stop'),
  keyDialog: $('key-dialog'),
  keyForm: $('key-form'),
  keyReason: $('key-reason'),
  key: $('key'),
  keyCancel: $('key-cancel'),
};

const STATE_KEY = 'interference.chat.v1';
const GATEWAY_KEY = 'interference.gatewayKey';
const NEW_TITLE = 'New chat';

// Links in answers open elsewhere and leak no referrer; everything else DOMPurify removes stays removed.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// HTML written in an answer is shown as the text it is, never parsed as markup: a model quoting
// `<script>` means the characters. (Parsing it only to sanitise it would still make the browser
// look at its event handlers.)
marked.use({ renderer: { html: ({ text }) => escapeHtml(text) } });

/**
 * Model output is untrusted: Markdown to HTML, then sanitised (links, images and attributes
 * Markdown itself makes). Never inserted any other way. Images are dropped: the page's policy
 * would block other hosts' anyway, and they would tell a third party that the answer was read.
 */
function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(text, { async: false }), { FORBID_TAGS: ['img', 'style'], FORBID_ATTR: ['style'] });
}

// ---- State, kept in localStorage ------------------------------------------------------------------

let state = loadState();
let gatewayKey = localStorage.getItem(GATEWAY_KEY) ?? '';
let providers = [];
let models = [];
let attachment = null; // a data: URI waiting to be sent
let controller = null; // the request in flight, for Stop
/** Each message's element, outside the state so it is never saved. */
const elements = new WeakMap();

function loadState() {
  try {
    const saved = JSON.parse(localStorage.getItem(STATE_KEY) ?? 'null');
    if (saved && Array.isArray(saved.conversations)) {
      // An answer still streaming when the page went away ended there.
      for (const m of saved.conversations.flatMap((c) => c.messages)) {
        if (!m.pending) continue;
        delete m.pending;
        m.stopped = true;
      }
      return saved;
    }
  } catch {
    // unreadable: start afresh rather than not at all
  }
  return { conversations: [], current: null };
}

function save() {
  try {
    localStorage.setItem(STATE_KEY, JSON.stringify(state));
  } catch {
    // Over the quota: attached images are the big part; keep the words.
    const slim = state.conversations.map((c) => ({ ...c, messages: c.messages.map(({ image, ...m }) => (image ? { ...m, imageDropped: true } : m)) }));
    try {
      localStorage.setItem(STATE_KEY, JSON.stringify({ ...state, conversations: slim }));
    } catch {
      announce('This browser refused to save the conversation (storage full).');
    }
  }
}

const current = () => state.conversations.find((c) => c.id === state.current);

function newConversation() {
  const conversation = { id: crypto.randomUUID(), title: NEW_TITLE, messages: [], provider: els.provider.value, model: els.model.value };
  state.conversations.unshift(conversation);
  state.current = conversation.id;
  save();
  return conversation;
}

function announce(text) {
  els.status.textContent = text;
}

// ---- The API -------------------------------------------------------------------------------------

/** fetch() with the gateway key; a 401 asks for the key (once for concurrent requests) and retries. */
async function api(path, init = {}) {
  for (;;) {
    const headers = new Headers(init.headers);
    if (gatewayKey !== '') headers.set('authorization', `Bearer ${gatewayKey}`);
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    if (!(await askForKey(gatewayKey !== ''))) return response;
  }
}

let asking = null;
/** Shows the key form; resolves true once a key is saved, false when cancelled. */
function askForKey(refused) {
  asking ??= new Promise((resolve) => {
    els.keyReason.textContent = refused
      ? 'The gateway refused the saved key. Enter its API key (kept in this browser only).'
      : 'This gateway needs its API key. It is kept in this browser only.';
    els.key.value = '';
    const finish = (saved) => {
      els.keyForm.onsubmit = els.keyCancel.onclick = els.keyDialog.oncancel = null;
      if (els.keyDialog.open) els.keyDialog.close();
      asking = null;
      resolve(saved);
    };
    els.keyForm.onsubmit = (event) => {
      event.preventDefault();
      gatewayKey = els.key.value.trim();
      localStorage.setItem(GATEWAY_KEY, gatewayKey);
      finish(gatewayKey !== '');
    };
    els.keyCancel.onclick = () => finish(false);
    els.keyDialog.oncancel = () => finish(false);
    els.keyDialog.showModal();
  });
  return asking;
}

/** A readable sentence from an error response: the OpenAI-shaped message, and who was tried. */
async function errorText(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body?.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON: the status says enough
  }
  const attempts = response.headers.get('x-interference-attempts');
  return attempts ? `${message}\nAttempts: ${describeAttempts(attempts)}` : message;
}

/** `Groq=rate_limited OpenRouter=ok` → `Groq (rate_limited), OpenRouter (ok)` */
const describeAttempts = (header) =>
  header
    .split(' ')
    .filter(Boolean)
    .map((attempt) => attempt.replace(/=(.*)$/, ' ($1)'))
    .join(', ');

/** The data of each server-sent event (`data:` lines joined), until the stream ends. */
async function* serverSentEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      const data = block
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''));
      if (data.length > 0) yield data.join('\n');
    }
  }
}

// ---- Providers and models -------------------------------------------------------------------------

/** Sends prompts to a keyless service on the internet (not this machine, not an account of yours). */
const isPublic = (p) => p.public_service === true;

async function loadProviders() {
  const response = await api('/v1/providers');
  if (!response.ok) {
    els.providerNote.textContent = `Cannot list providers: ${await errorText(response)}`;
    return;
  }
  providers = await response.json();
  const groups = [
    ['Ready', (p) => p.configured && p.working],
    ['Not working now', (p) => p.configured && !p.working],
    ['Not configured', (p) => !p.configured],
  ];
  const auto = new Option('Auto (the gateway picks)', '');
  els.provider.replaceChildren(auto);
  for (const [label, test] of groups) {
    const members = providers.filter(test);
    if (members.length === 0) continue;
    const group = document.createElement('optgroup');
    group.label = label;
    for (const p of members) group.append(new Option(isPublic(p) ? `${p.id} (public service)` : p.id, p.id));
    els.provider.append(group);
  }
  els.provider.value = current()?.provider ?? '';
  if (els.provider.selectedIndex === -1) els.provider.selectedIndex = 0; // a provider no longer listed: Auto
  describeProvider();
}

function describeProvider() {
  const p = providers.find((candidate) => candidate.id === els.provider.value);
  let note;
  if (p === undefined) {
    const open = providers.filter((candidate) => candidate.configured && candidate.auto_route && isPublic(candidate)).map((candidate) => candidate.id);
    note = `The gateway picks a configured provider that serves the model${open.length > 0 ? `; public services that may receive your prompt: ${open.join(', ')}` : ''}.`;
  } else if (!p.configured) note = p.status_message ?? `${p.id} is not configured.`;
  else if (!p.working) note = `${p.id} is failing right now${p.retry_in_s ? ` (retry in ${p.retry_in_s} s)` : ''}.`;
  else if (isPublic(p)) note = `${p.label}: a public service with no key; what you send goes to ${p.public_hosts.join(', ')}.`;
  else if (p.needs_auth) note = `${p.label}, with the key configured on the gateway.`;
  else note = `${p.label}: no key, and not a public service (this machine, or a server you configured).`;
  els.providerNote.textContent = note;
}

let modelsWanted = 0;
async function loadModels() {
  const ticket = ++modelsWanted; // a newer pick supersedes this one
  const provider = els.provider.value;
  const response = await api(provider === '' ? '/v1/models' : `/api/${encodeURIComponent(provider)}/models`);
  if (ticket !== modelsWanted) return;
  const list = response.ok ? (await response.json()).data : [];
  if (ticket !== modelsWanted) return;
  // Auto offers what some configured provider serves; a named provider shows its whole list.
  models = provider === '' ? list.filter((m) => m.available) : list;
  els.model.replaceChildren(new Option(provider === '' ? 'Default model' : "The provider's default", ''));
  for (const [label, type] of [
    ['Chat models', 'chat'],
    ['Image models', 'image'],
  ]) {
    const members = models.filter((m) => m.type === type);
    if (members.length === 0) continue;
    const group = document.createElement('optgroup');
    group.label = label;
    for (const m of members) group.append(new Option(`${m.id}${m.vision ? ' (sees images)' : ''}`, m.id));
    els.model.append(group);
  }
  const wanted = current()?.model ?? '';
  els.model.value = models.some((m) => m.id === wanted) ? wanted : '';
}

const pickedModel = () => models.find((m) => m.id === els.model.value);

// ---- Rendering ------------------------------------------------------------------------------------

function renderConversations() {
  els.conversations.replaceChildren(
    ...state.conversations.map((conversation) => {
      const item = document.createElement('li');
      item.dataset.id = conversation.id;
      const open = button(conversation.title, 'title', () => select(conversation.id));
      if (conversation.id === state.current) open.setAttribute('aria-current', 'true');
      const rename = button('✎', 'small', () => startRename(item, conversation));
      rename.setAttribute('aria-label', `Rename ${conversation.title}`);
      const remove = button('✕', 'small', () => deleteConversation(conversation.id));
      remove.setAttribute('aria-label', `Delete ${conversation.title}`);
      item.append(open, rename, remove);
      return item;
    }),
  );
}

function button(text, className, onClick) {
  const element = document.createElement('button');
  element.type = 'button';
  element.className = className;
  element.textContent = text;
  element.addEventListener('click', onClick);
  return element;
}

/** Renames in place: a text box over the title; Enter keeps, Escape cancels. */
function startRename(item, conversation) {
  const input = document.createElement('input');
  input.value = conversation.title;
  input.setAttribute('aria-label', 'Conversation name');
  let done = false;
  const finish = (keep) => {
    if (done) return;
    done = true;
    if (keep && input.value.trim() !== '') conversation.title = input.value.trim().slice(0, 80);
    save();
    renderConversations();
    // The text box is gone: keyboard focus returns to the conversation it named.
    els.conversations.querySelector(`li[data-id="${conversation.id}"] .title`)?.focus();
  };
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') finish(true);
    if (event.key === 'Escape') {
      event.stopPropagation();
      finish(false);
    }
  });
  input.addEventListener('blur', () => finish(true));
  item.replaceChildren(input);
  input.select();
}

function deleteConversation(id) {
  state.conversations = state.conversations.filter((c) => c.id !== id);
  if (state.current === id) state.current = state.conversations[0]?.id ?? null;
  if (current() === undefined) newConversation();
  save();
  showConversation();
  announce('Conversation deleted.');
}

function select(id) {
  if (controller !== null) controller.abort();
  state.current = id;
  save();
  showConversation();
  showSidebar(false);
  els.message.focus();
}

async function showConversation() {
  const conversation = current();
  renderConversations();
  els.messages.replaceChildren(...conversation.messages.map(renderMessage));
  els.messages.scrollTop = els.messages.scrollHeight;
  if (providers.length > 0 && els.provider.value !== (conversation.provider ?? '')) {
    els.provider.value = conversation.provider ?? ''; // an unknown id selects nothing: then Auto
    if (els.provider.value === '' && els.provider.selectedIndex === -1) els.provider.selectedIndex = 0;
    describeProvider();
    await loadModels();
  } else if (models.length > 0) els.model.value = models.some((m) => m.id === conversation.model) ? conversation.model : '';
}

/** One message's element; the same message object re-rendered replaces it (streaming). */
function renderMessage(message) {
  const article = document.createElement('article');
  article.className = `message ${message.role}`;
  const who = document.createElement('h3');
  who.className = 'visually-hidden';
  who.textContent = message.role === 'user' ? 'You' : 'Answer';
  const body = document.createElement('div');
  body.className = 'body';
  // The person's own words are text, never markup; the answer is sanitised Markdown.
  if (message.role === 'user') body.textContent = message.content;
  else body.innerHTML = renderMarkdown(message.content);
  article.append(who, body);
  if (message.image) article.append(image(message.image, 'Attached image', 'attached'));
  if (message.imageDropped) article.append(note('(the attached image was too large to keep)'));
  for (const url of message.images ?? []) article.append(image(url, `Generated image: ${message.prompt ?? ''}`, 'generated'));
  if (message.pending && message.content === '' && !message.images) article.append(note('…', 'typing'));
  if (message.stopped) article.append(note('Stopped.'));
  if (message.error) {
    const error = document.createElement('p');
    error.className = 'error';
    error.setAttribute('role', 'alert');
    error.textContent = message.error;
    article.append(error);
  }
  // Who answered, once the answer is whole (the usage comes last).
  if (message.meta && !message.pending) article.append(note(describeMeta(message.meta), 'meta'));
  elements.set(message, article);
  return article;
}

function note(text, className = 'note') {
  const element = document.createElement('p');
  element.className = className;
  element.textContent = text;
  return element;
}

/** Generated images are fetched with the gateway key (/images/ is behind it), then shown from a blob: URL. */
function image(url, alt, className) {
  const element = document.createElement('img');
  element.alt = alt;
  element.className = className;
  if (url.startsWith('data:')) element.src = url;
  else {
    const path = new URL(url, location.href);
    // Same origin only (the page's policy): an absolute URL of this gateway under another name becomes a path.
    api(path.origin === location.origin ? path.href : path.pathname)
      .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(String(response.status)))))
      .then((blob) => (element.src = URL.createObjectURL(blob)))
      .catch(() => element.replaceWith(note(`The image ${path.pathname} could not be loaded.`)));
  }
  return element;
}

function describeMeta(meta) {
  const parts = [meta.provider, meta.model].filter(Boolean);
  if (meta.usage) parts.push(`${meta.usage.prompt_tokens ?? '?'} + ${meta.usage.completion_tokens ?? '?'} tokens`);
  if (meta.ms !== undefined) parts.push(`${(meta.ms / 1000).toFixed(1)} s`);
  // Failover is worth seeing: every attempt when there was more than one, or when one failed.
  if (meta.attempts && (meta.attempts.includes(' ') || !/=ok$/.test(meta.attempts))) parts.push(`attempts: ${describeAttempts(meta.attempts)}`);
  return parts.join(' · ');
}

let frame = 0;
/** Re-renders the streaming message at most once per frame. */
function refresh(message) {
  if (frame !== 0) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    const old = elements.get(message);
    const stuck = els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 40;
    if (old?.isConnected) old.replaceWith(renderMessage(message));
    if (stuck) els.messages.scrollTop = els.messages.scrollHeight;
  });
}

// ---- Sending --------------------------------------------------------------------------------------

function setBusy(busy) {
  els.send.disabled = busy;
  els.stop.disabled = !busy;
}

/** What the model sees: the words so far, images as OpenAI image_url parts; drawing requests and failed turns left out. */
function history(conversation) {
  return conversation.messages
    .filter((m) => !m.error && !m.pending && !m.drawing && (m.content !== '' || m.image))
    .map((m) => {
      if (!m.image) return { role: m.role, content: m.content };
      const text = m.content === '' ? [] : [{ type: 'text', text: m.content }];
      return { role: m.role, content: [...text, { type: 'image_url', image_url: { url: m.image } }] };
    });
}

async function send() {
  const text = els.message.value.trim();
  if ((text === '' && attachment === null) || controller !== null) return;
  const conversation = current();
  const command = /^\/image\s+([\s\S]+)/.exec(text);
  const drawing = command !== null || pickedModel()?.type === 'image';
  conversation.messages.push({ role: 'user', content: text, ...(attachment ? { image: attachment } : {}), ...(drawing ? { drawing } : {}) });
  if (conversation.title === NEW_TITLE) conversation.title = text.slice(0, 40) || 'Image';
  conversation.provider = els.provider.value;
  conversation.model = els.model.value;
  els.message.value = '';
  clearAttachment();
  const reply = { role: 'assistant', content: '', pending: true };
  conversation.messages.push(reply);
  save();
  renderConversations();
  els.messages.append(...conversation.messages.slice(-2).map(renderMessage));
  els.messages.scrollTop = els.messages.scrollHeight;

  controller = new AbortController();
  setBusy(true);
  announce('Answering…');
  const started = performance.now();
  try {
    if (drawing) await generateImage(command?.[1].trim() ?? text, reply, controller.signal);
    else await streamChat(conversation, reply, controller.signal);
    announce('Answer complete.');
  } catch (error) {
    if (error.name === 'AbortError') {
      reply.stopped = true;
      announce('Stopped.');
    } else {
      reply.error = error.message;
      announce(`Error: ${error.message}`);
    }
  } finally {
    if (reply.meta) reply.meta.ms = performance.now() - started;
    delete reply.pending;
    controller = null;
    setBusy(false);
    save();
    cancelAnimationFrame(frame);
    frame = 0;
    elements.get(reply)?.replaceWith(renderMessage(reply));
  }
}

async function streamChat(conversation, reply, signal) {
  const body = { messages: history(conversation), stream: true, stream_options: { include_usage: true } };
  if (els.provider.value !== '') body.provider = els.provider.value;
  if (els.model.value !== '') body.model = els.model.value;
  const response = await api('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!response.ok) throw new Error(await errorText(response));
  reply.meta = { provider: response.headers.get('x-interference-provider'), attempts: response.headers.get('x-interference-attempts') };
  for await (const data of serverSentEvents(response.body)) {
    if (data === '[DONE]') break;
    const chunk = JSON.parse(data);
    // A failure after the stream began arrives as an event: keep what came, show why it ended.
    if (chunk.error) throw new Error(chunk.error.message ?? 'the stream failed');
    if (chunk.model) reply.meta.model = chunk.model;
    if (chunk.provider) reply.meta.provider = chunk.provider;
    if (chunk.usage) reply.meta.usage = chunk.usage;
    const piece = chunk.choices?.[0]?.delta?.content;
    if (piece) {
      reply.content += piece;
      refresh(reply);
    }
  }
}

async function generateImage(prompt, reply, signal) {
  // A chat model or a provider without images would only fail: name them only when they can draw.
  const provider = providers.find((p) => p.id === els.provider.value);
  const body = { prompt, response_format: 'url' };
  if (provider?.image) body.provider = provider.id;
  if (pickedModel()?.type === 'image') body.model = els.model.value;
  const response = await api('/v1/images/generate', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal });
  if (!response.ok) throw new Error(await errorText(response));
  const result = await response.json();
  reply.prompt = prompt;
  reply.images = result.data.map((d) => d.url ?? `data:image/png;base64,${d.b64_json}`);
  reply.meta = { provider: result.provider, model: result.model, attempts: response.headers.get('x-interference-attempts') };
}

// ---- Attachments ----------------------------------------------------------------------------------

function clearAttachment() {
  attachment = null;
  els.file.value = '';
  els.attachment.hidden = true;
  els.attachmentPreview.removeAttribute('src');
}

els.file.addEventListener('change', () => {
  const file = els.file.files?.[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    attachment = String(reader.result);
    els.attachmentPreview.src = attachment;
    els.attachment.hidden = false;
  };
  reader.readAsDataURL(file);
});
els.removeAttachment.addEventListener('click', () => {
  clearAttachment();
  els.message.focus();
});

// ---- Wiring ---------------------------------------------------------------------------------------

els.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
els.message.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send();
  }
});
els.stop.addEventListener('click', () => controller?.abort());
document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape' || els.keyDialog.open) return;
  if (controller !== null) controller.abort();
  else if (els.sidebar.classList.contains('open')) showSidebar(false);
});
els.newChat.addEventListener('click', () => {
  showSidebar(false);
  newConversation();
  showConversation();
  els.message.focus();
});
/** The conversation list on a phone, where it covers the chat: focus goes in, and back to the button. */
function showSidebar(open) {
  if (els.sidebar.classList.contains('open') === open) return;
  els.sidebar.classList.toggle('open', open);
  els.toggleSidebar.setAttribute('aria-expanded', String(open));
  (open ? els.newChat : els.toggleSidebar).focus();
}
els.toggleSidebar.addEventListener('click', () => showSidebar(true));
els.closeSidebar.addEventListener('click', () => showSidebar(false));
els.provider.addEventListener('change', () => {
  current().provider = els.provider.value;
  save();
  describeProvider();
  loadModels();
});
els.model.addEventListener('change', () => {
  current().model = els.model.value;
  save();
});

if (current() === undefined) {
  if (state.conversations.length > 0) state.current = state.conversations[0].id;
  else newConversation();
}
showConversation();
els.message.focus();
await loadProviders();
await loadModels();
