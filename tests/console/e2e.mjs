// End-to-end checks of the agent console in Debian's Chromium (playwright-core), against a
// running `switchboard serve --sandbox` (started by tests/browser/console.rs, which passes
// BASE_URL, SIMULATOR_URL, ADMIN_EMAIL, ADMIN_PASSWORD, SCREENSHOTS and TOKEN_TTL).
// Each step prints what it checked; the first failure exits 1 with the reason.
import { chromium } from 'playwright-core';

const BASE = process.env.BASE_URL;
const SIM = process.env.SIMULATOR_URL;
const ADMIN = { email: process.env.ADMIN_EMAIL, password: process.env.ADMIN_PASSWORD };
const TOKEN_TTL = Number(process.env.TOKEN_TTL || '20');
const SCREENSHOTS = process.env.SCREENSHOTS || '';
const NEW_ADMIN_PASSWORD = 'the admin chose this one';

const step = (text) => console.log(`ok - ${text}`);

/** A page whose script errors or Content-Security-Policy refusals fail the run. */
const problems = [];
function watch(page, who) {
  page.on('pageerror', (error) => problems.push(`${who}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Refused to|Content Security Policy/.test(message.text())) problems.push(`${who}: ${message.text()}`);
  });
}

async function until(what, check, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms: ${what} (last: ${last})`);
}

async function http(method, url, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const customerSays = (from, text, name = 'Customer') => http('POST', `${SIM}/control/customer-message`, { from, text, name });
const received = () => http('GET', `${SIM}/control/received`);
const receivedText = async (text) => JSON.stringify(await received()).includes(JSON.stringify(text).slice(1, -1));

async function signIn(page, email, password) {
  await page.goto(BASE);
  await page.getByLabel(/email|correo/i).fill(email);
  await page.getByLabel(/^(password|contraseña)$/i).fill(password);
  await page.locator('[data-testid=signin] button[type=submit]').click();
}

const row = (page, name) => page.locator('[data-testid=conversation-row]', { hasText: name });
const messagesWith = (page, text) => page.locator('[data-testid=message]', { hasText: text });

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  try {
    // --- First start: the printed one-time password, changed, then used no more.
    const a = await browser.newContext({ locale: 'en-US', timezoneId: 'America/Mexico_City', viewport: { width: 1280, height: 800 } });
    const pageA = await a.newPage();
    watch(pageA, 'A');
    await signIn(pageA, ADMIN.email, ADMIN.password);
    await pageA.locator('[data-testid=change-password]').waitFor();
    await pageA.getByLabel('Current password').fill(ADMIN.password);
    await pageA.getByLabel('New password', { exact: true }).fill(NEW_ADMIN_PASSWORD);
    await pageA.getByLabel('New password again').fill(NEW_ADMIN_PASSWORD);
    await pageA.locator('[data-testid=change-password] button[type=submit]').click();
    await pageA.locator('[data-testid=signin-notice]').waitFor();
    await signIn(pageA, ADMIN.email, ADMIN.password);
    await pageA.getByText('Wrong email or password.').waitFor();
    await signIn(pageA, ADMIN.email, NEW_ADMIN_PASSWORD);
    await pageA.locator('[data-testid=conversation-list]').waitFor();
    await until('the socket is live', () => pageA.locator('[data-testid=live][data-online=true]').count());
    step('signed in with the one-time password, changed it, signed in again (the old one is refused)');

    // --- A customer writes: the open inbox shows it within a second, without a reload.
    const injected = Date.now();
    await customerSays('15550001001', 'Hola, where is my order?', 'Ana Pérez');
    try {
      await until('the message in the inbox', () => row(pageA, 'where is my order').count(), 1000);
    } catch (late) {
      // Say whether it was late or lost: a bound missed by a slow machine reads differently
      // from a message that never came.
      await until('the message in the inbox, late', () => row(pageA, 'where is my order').count(), 15000)
        .then(() => { throw new Error(`the message appeared ${Date.now() - injected} ms after the webhook (bound: 1000 ms)`); }, () => { throw late; });
    }
    step(`a customer message appeared in the open inbox ${Date.now() - injected} ms after the webhook`);

    // --- Reply from the composer: the simulator gets it; ticks go sent → delivered → read.
    await row(pageA, 'Ana Pérez').click();
    await messagesWith(pageA, 'where is my order').waitFor();
    await pageA.evaluate(() => {
      window.seenStatuses = [];
      new MutationObserver(() => {
        for (const tick of document.querySelectorAll('[data-testid=ticks]')) {
          const status = tick.dataset.status;
          if (window.seenStatuses.at(-1) !== status) window.seenStatuses.push(status);
        }
      }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
    });
    await pageA.getByTestId('composer-text').fill('It ships today!');
    await pageA.getByTestId('send').dblclick();
    await until('the simulator received the reply', () => receivedText('It ships today!'));
    await until('read ticks', () => pageA.locator('[data-testid=ticks][data-status=read]').count(), 10000);
    const seen = await pageA.evaluate(() => window.seenStatuses);
    const order = ['queued', 'accepted', 'sent', 'delivered', 'read'];
    for (const status of ['sent', 'delivered', 'read']) {
      if (!seen.includes(status)) throw new Error(`ticks never showed ${status}: ${seen}`);
    }
    if (seen.some((s, i) => i > 0 && order.indexOf(s) < order.indexOf(seen[i - 1]))) throw new Error(`ticks went backwards: ${seen}`);
    const copies = (await received()).filter((m) => JSON.stringify(m).includes('It ships today!')).length;
    if (copies !== 1) throw new Error(`a double click sent ${copies} copies`);
    step(`reply received by the simulator once; ticks on screen: ${seen.join(' → ')}`);

    // --- A photo from the customer: fetched by the server, shown as a picture.
    const photo = 'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAFklEQVR4nGM4oaFBEmIY1TCqYfhqAAB8MxgQ+Pjr0gAAAABJRU5ErkJggg==';
    await http('POST', `${SIM}/control/customer-message`, {
      from: '15550001001', name: 'Ana Pérez',
      media: { type: 'image', mime_type: 'image/png', data_base64: photo, caption: 'the broken part' },
    });
    await until('the photo shows', () => pageA.locator('[data-testid=media-image]').evaluate((img) => img.complete && img.naturalWidth === 16).catch(() => false), 8000);
    await messagesWith(pageA, 'the broken part').waitFor();
    step('a photo the customer sent shows as a picture, with its caption');

    // --- The agent attaches a picture: uploaded, then sent through Meta with the text as caption.
    await pageA.getByTestId('attach').setInputFiles({ name: 'label.png', mimeType: 'image/png', buffer: Buffer.from(photo, 'base64') });
    await pageA.getByTestId('attachment').waitFor();
    await pageA.getByTestId('composer-text').fill('Here is the return label');
    await pageA.getByTestId('send').click();
    await until('the simulator received the picture', async () => (await received()).some((m) => m.type === 'image' && m.image?.caption === 'Here is the return label' && m.image?.id));
    if (await pageA.getByTestId('attachment').count()) throw new Error('the attachment stayed after sending');
    step('an attached picture went to the customer with its caption');
    if (SCREENSHOTS) {
      await pageA.locator('[data-testid=media-image]').last().waitFor();
      await pageA.screenshot({ path: `${SCREENSHOTS}/conversation.png` });
    }

    // --- Two agents: B sees A's lock and that A is viewing; B's send is refused readably.
    const adminToken = (await http('POST', `${BASE}/api/auth/login`, { email: ADMIN.email, password: NEW_ADMIN_PASSWORD })).access_token;
    const bruno = { email: 'bruno@example.com', password: 'bruno initial password' };
    await http('POST', `${BASE}/api/agents`, { email: bruno.email, name: 'Bruno', role: 'supervisor', password: bruno.password }, adminToken);
    const brunoToken = (await http('POST', `${BASE}/api/auth/login`, bruno)).access_token;
    await http('PUT', `${BASE}/api/auth/password`, { current_password: bruno.password, new_password: 'bruno chose his own' }, brunoToken);
    const b = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 800 } });
    const pageB = await b.newPage();
    watch(pageB, 'B');
    await signIn(pageB, bruno.email, 'bruno chose his own');
    await row(pageB, 'Ana Pérez').click();
    await pageB.locator('[data-testid=viewers]', { hasText: 'Administrator' }).waitFor();
    await pageA.getByTestId('composer-text').fill('Let me check');
    await pageA.locator('[data-testid=lock-mine]').waitFor();
    await pageB.locator('[data-testid=lock-other]', { hasText: 'Administrator' }).waitFor();
    step('B sees that A is viewing and holds the lock');
    await pageB.getByTestId('composer-text').fill('I can help too');
    const refused = pageB.waitForResponse((r) => r.url().endsWith('/messages') && r.request().method() === 'POST');
    await pageB.getByTestId('send').click();
    const refusal = await refused;
    if (refusal.status() !== 409) throw new Error(`B's send answered ${refusal.status()}, not 409`);
    await pageB.locator('[data-testid=problem]', { hasText: 'Your message was not sent' }).waitFor();
    if (await receivedText('I can help too')) throw new Error("B's message reached the customer while A held the lock");
    step(`B's send was refused: "${await pageB.getByTestId('problem').textContent()}"`);
    await pageA.locator('[data-testid=lock-mine] button').click();
    await until('B sees the lock gone', async () => (await pageB.locator('[data-testid=lock-other]').count()) === 0);
    await pageB.getByTestId('send').click();
    await until("the simulator received B's message", () => receivedText('I can help too'));
    step("after A released the lock, B's send went through");
    if (await pageB.getByTestId('nav-admin').count()) throw new Error('a supervisor without can_manage_agents sees the admin pages');
    await pageA.getByTestId('nav-admin').click();
    await pageA.locator('[data-testid=admin] td', { hasText: 'bruno@example.com' }).waitFor();
    await pageA.getByRole('button', { name: 'Inbox' }).click();
    await row(pageA, 'Ana Pérez').click();
    step('the admin pages list the agents, for managers only');
    await pageA.getByTestId('composer-text').fill('');
    await b.close();

    // --- Short-lived access tokens: the console stays live across several refreshes.
    const liveFor = Math.max(60, TOKEN_TTL * 3) * 1000;
    const started = Date.now();
    let n = 0;
    while (Date.now() - started < liveFor) {
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      n += 1;
      await customerSays('15550001001', `still there ${n}?`, 'Ana Pérez');
      await until(`message ${n} on screen`, () => messagesWith(pageA, `still there ${n}?`).count(), 3000);
    }
    if (await pageA.locator('[data-testid=signin]').count()) throw new Error('sent back to sign-in');
    step(`with ${TOKEN_TTL} s access tokens the open conversation stayed live for ${Math.round((Date.now() - started) / 1000)} s without a reload`);

    // --- Network dropped for 5 s while three messages arrive: each appears once after.
    await a.setOffline(true);
    await until('the console notices it is offline', () => pageA.locator('[data-testid=live][data-online=false]').count());
    const offlineAt = Date.now();
    for (const text of ['offline one', 'offline two', 'offline three']) await customerSays('15550001001', text, 'Ana Pérez');
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 5000 - (Date.now() - offlineAt))));
    if (await messagesWith(pageA, 'offline one').count()) throw new Error('a message arrived while offline');
    await a.setOffline(false);
    for (const text of ['offline one', 'offline two', 'offline three']) {
      await until(`"${text}" after reconnecting`, () => messagesWith(pageA, text).count(), 5000);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const text of ['offline one', 'offline two', 'offline three']) {
      const count = await messagesWith(pageA, text).count();
      if (count !== 1) throw new Error(`"${text}" shown ${count} times`);
    }
    step('network dropped for 5 s: the three messages sent meanwhile appeared once each after reconnecting');

    // --- The same screens in Spanish (switched, remembered after a reload).
    await pageA.getByTestId('language').selectOption('es');
    await pageA.getByRole('tab', { name: /Todas/ }).waitFor();
    await pageA.reload();
    await pageA.getByRole('tab', { name: /Mías/ }).waitFor();
    await row(pageA, 'Ana Pérez').click();
    await pageA.getByRole('button', { name: 'Enviar' }).waitFor();
    await pageA.getByText(/La ventana se cierra en|Ventana cerrada/).first().waitFor();
    await pageA.locator('[data-testid=ticks][title=Leído]').first().waitFor();
    step('the inbox and the conversation in Spanish, remembered after a reload');
    await pageA.getByTestId('language').selectOption('en');
    await pageA.getByRole('button', { name: 'Send' }).waitFor();

    // --- Phone width: the inbox, then the conversation alone, and back.
    const phone = await browser.newContext({ locale: 'en-US', viewport: { width: 390, height: 800 }, isMobile: true });
    const pagePhone = await phone.newPage();
    await signIn(pagePhone, ADMIN.email, NEW_ADMIN_PASSWORD);
    await row(pagePhone, 'Ana Pérez').click();
    await pagePhone.getByTestId('composer-text').waitFor();
    if (await pagePhone.getByTestId('conversation-list').isVisible()) throw new Error('at phone width the inbox hides the conversation');
    await pagePhone.getByRole('button', { name: /Back/ }).click();
    await pagePhone.getByTestId('conversation-list').waitFor();
    await phone.close();
    step('at phone width the inbox and the conversation take the screen in turn');

    if (SCREENSHOTS) {
      await customerSays('15550001002', 'Do you ship to Valencia?', 'Jordi Puig');
      await customerSays('15550001003', 'Thanks, got it 👍', 'Mei Chen');
      await until('three conversations', async () => (await pageA.locator('[data-testid=conversation-row]').count()) >= 3);
      await pageA.getByTestId('tab-all').click();
      await pageA.screenshot({ path: `${SCREENSHOTS}/inbox.png` });
      step(`screenshots written to ${SCREENSHOTS}`);
    }
    if (problems.length) throw new Error(`errors in the pages: ${problems.join('; ')}`);
  } finally {
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.log(`not ok - ${error.stack || error}`);
    process.exit(1);
  },
);
