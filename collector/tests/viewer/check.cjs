// The viewer's trace pages in headless Chromium (see browser.cjs): load, search, open a
// trace, see its spans and a span's attributes, the service map and the RED cards.
//
//   INSTGO_PLAYWRIGHT=<node_modules/playwright-core> INSTGO_CHROMIUM=/usr/bin/chromium \
//   node check.cjs http://127.0.0.1:PORT
const { run, expect, until } = require('./browser.cjs');

run('traces', async (page, base) => {
  // Waits until the list is exactly one trace whose row mentions `text` (the page
  // re-renders after each search; an earlier list may be on screen for a moment).
  const onlyRow = (text, what) => until(page, what, t => {
    const rows = document.querySelectorAll('[data-testid=trace-row]');
    return rows.length === 1 && rows[0].innerText.includes(t);
  }, text, 10);
  await page.goto(base + '/');
  const rows = page.getByTestId('trace-row');
  await rows.first().waitFor();
  expect((await rows.count()) === 2, `2 traces listed, saw ${await rows.count()}`);

  // Search by span name: only the trace that has it.
  await page.getByTestId('name').fill('SELECT users');
  await page.getByTestId('go').click();
  await onlyRow('GET /users/{id}', 'the search by span name finds the users trace');

  // Errors only, on its own: the failing trace.
  await page.goto(base + '/#/traces?errors=true');
  await onlyRow('POST /orders', 'errors only shows the failing trace');

  // Open it: the waterfall nests the child under the root, and a click shows attributes.
  await rows.first().click();
  await page.getByTestId('trace-title').waitFor();
  const spans = page.getByTestId('span-row');
  await spans.first().waitFor();
  expect((await spans.count()) === 2, `2 spans in the waterfall, saw ${await spans.count()}`);
  const pad = async i => parseInt(await spans.nth(i).locator('td').first().evaluate(td => td.style.paddingLeft));
  expect((await pad(1)) > (await pad(0)), 'the child is indented under its parent');
  expect((await spans.nth(1).innerText()).includes('✗'), 'the failing span is marked');
  await spans.nth(0).click();
  const attrs = page.getByTestId('attributes').first();
  await attrs.waitFor();
  expect((await attrs.innerText()).includes('http.route = /orders'), 'a span shows its attributes');

  // Service map and RED.
  await page.goto(base + '/#/map');
  await page.getByTestId('edges').locator('tr').first().waitFor();
  const edges = await page.getByTestId('edges').innerText();
  expect(edges.includes('gateway → users') && edges.includes('gateway → orders'), 'the map has both calls: ' + edges);
  await page.goto(base + '/#/services');
  await page.getByTestId('red-gateway').waitFor();
  const card = await page.getByTestId('red-orders').innerText();
  expect(card.includes('100.0 % errors'), 'the orders card counts its error: ' + card);
  // From the histogram: 200 requests in the 10 s between the two exports.
  const fromMetrics = await page.getByTestId('red-metrics-orders').innerText();
  expect(fromMetrics.includes('20.000 req/s') && fromMetrics.includes('0.0 % errors'),
    'the orders card has RED from its histogram: ' + fromMetrics);
  expect(card.includes('from http.server.request.duration'), 'the card names the metric: ' + card);
});
