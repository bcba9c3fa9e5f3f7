// The viewer's Agents page in headless Chromium (see browser.cjs). The Rust test runs an
// OpAMP agent of service `orders` beside it that applies what it is sent, and fails any
// config whose sampling_ratio is not a number. Here: the agent is listed, its detail
// shows its effective config and description, a config pushed to its service from the
// editor comes back applied, one pushed to the agent alone comes back failed with the
// reason, an oversized one is refused with the collector's message, and the list's
// refresh does not lose what is being typed.
//
//   node agents.cjs http://127.0.0.1:PORT
const { run, expect, until } = require('./browser.cjs');

run('agents', async (page, base) => {
  // Waits until the first agent row's `testid` cell includes `text`.
  const cell = (testid, text, what) => until(page, what, ([id, t]) => {
    const c = document.querySelector(`[data-testid=agent-row] [data-testid=${id}]`);
    return c && c.innerText.includes(t);
  }, [testid, text], 15);
  await page.goto(base + '/#/agents');
  const rows = page.getByTestId('agent-row');
  await rows.first().waitFor();
  expect((await rows.count()) === 1, `1 agent listed, saw ${await rows.count()}`);
  const row = await rows.first().innerText();
  expect(row.includes('orders'), 'the row names the service: ' + row);
  await cell('agent-health', 'healthy', 'the agent is healthy');
  await cell('agent-config', 'none pushed', 'nothing pushed yet');
  expect(/\d+ s ago/.test(await page.getByTestId('agent-seen').innerText()), 'last seen is shown');

  await rows.first().click();
  await page.getByTestId('agent-title').waitFor();
  const effective = page.getByTestId('effective-config');
  expect((await effective.innerText()).includes('# nothing set'), 'the effective config is shown');
  const attrs = await page.getByTestId('agent-attributes').innerText();
  expect(attrs.includes('service.name = orders') && attrs.includes('instgo.rules = axum, reqwest'),
    'the description is shown: ' + attrs);

  // To the whole service.
  const editor = page.getByTestId('config-editor');
  await editor.fill('sampling_ratio = 0.25\n');
  await page.getByTestId('push-service').click();
  const result = page.getByTestId('push-result');
  await until(page, 'the push is answered', () => !document.querySelector('[data-testid=push-result]').innerText.startsWith('Pushing'), null, 30);
  const pushed = await result.innerText();
  expect(pushed.includes('Pushed to every agent of orders (1 agent now)'), 'the push is confirmed: ' + pushed);
  await cell('agent-config', 'applied (service)', 'the agent applies its service\'s config');
  await until(page, 'the effective config follows', () => document.querySelector('[data-testid=effective-config]').innerText.includes('sampling_ratio = 0.25'), null, 15);

  // What is typed survives the list's refresh (every 2 s).
  await editor.fill('sampling_ratio = "lots"\n');
  await page.waitForTimeout(2500);
  expect((await editor.inputValue()) === 'sampling_ratio = "lots"\n', 'the edit survives a refresh');

  // To this agent alone: its own config comes first, and it fails.
  await page.getByTestId('push-agent').click();
  await cell('agent-config', 'failed (agent): sampling_ratio: expected a number', 'the failure and its reason are shown');

  // Over the collector's limit.
  await editor.fill('# ' + 'x'.repeat(70 * 1024) + '\n');
  await page.getByTestId('push-agent').click();
  await until(page, 'the oversized push is refused', () => document.querySelector('[data-testid=push-result]').innerText.startsWith('Not pushed'), null, 30);
  const refused = await result.innerText();
  expect(refused.includes('at most 65536 are accepted'), 'the limit is named: ' + refused);
  await cell('agent-config', 'failed (agent)', 'a refused push changes nothing');
});
