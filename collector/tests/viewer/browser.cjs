// What the viewer's browser checks share: Chromium (Debian's, driven by playwright-core
// from INSTGO_PLAYWRIGHT) on the page at argv[2], a failure naming the first thing that
// was not as expected, and no script error on the page.
const { chromium } = require(process.env.INSTGO_PLAYWRIGHT);

function expect(cond, what) {
  if (!cond) throw new Error('viewer: ' + what);
}

// Waits until `cond(arg)`, run in the page, holds; fails naming `what` (the page's text
// is printed by `run`).
async function until(page, what, cond, arg, seconds) {
  try {
    await page.waitForFunction(cond, arg, { timeout: seconds * 1000 });
  } catch (e) {
    throw new Error(`viewer: ${what} (not after ${seconds} s)`);
  }
}

function run(name, checks) {
  (async () => {
    const browser = await chromium.launch({
      executablePath: process.env.INSTGO_CHROMIUM,
      args: ['--no-sandbox'],
    });
    try {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', e => errors.push(String(e)));
      try {
        await checks(page, process.argv[2]);
      } catch (e) {
        // What was on screen, so a failure here can be read without a rerun.
        const text = await page.locator('main').innerText().catch(() => '(no page)');
        throw new Error(`${e.message || e}\n--- the page showed:\n${text}\n--- script errors: ${errors.join('; ')}`);
      }
      expect(errors.length === 0, 'no script errors: ' + errors.join('; '));
      console.log(`viewer (${name}): all checks passed`);
    } finally {
      await browser.close();
    }
  })().catch(e => {
    console.error(e.message || e);
    process.exit(1);
  });
}

module.exports = { run, expect, until };
