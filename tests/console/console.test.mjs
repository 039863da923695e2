// The web console in headless Chromium: each test starts its own Berth, signs in with a real
// token and drives the page as a user would, checking what the REST API then holds.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, test } from "node:test";
import { launchBrowser, signIn, snap, withConsole } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Retries `check` until it passes or five seconds go by. */
async function eventually(check) {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const errorOf = (page, id) => page.locator(`#${id}-error`);

test("a token is asked for, a wrong one is refused and a good one opens the registries tab", async () => {
  await withConsole(browser, "sign-in", async (page, berth) => {
    await page.goto(berth.url);
    await page.getByRole("heading", { name: "Sign in to Berth" }).waitFor();
    await page.getByLabel("Access token").fill("not.a.token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await eventually(async () =>
      assert.match(await errorOf(page, "token").textContent(), /Berth refused this token/),
    );
    assert.equal(await page.evaluate(() => sessionStorage.getItem("berth.token")), null);

    await page.getByLabel("Access token").fill(berth.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Registries", level: 1 }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("berth.token")), berth.token);
    assert.equal(await page.locator(".subject").textContent(), "console-tester");

    // The token lasts as long as the tab: a reload stays signed in, signing out forgets it.
    await page.reload();
    await page.getByRole("heading", { name: "Registries", level: 1 }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to Berth" }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("berth.token")), null);
  });
});

test("a docker registry is created, and a bad name is explained as it is typed in the API's words", async () => {
  await withConsole(browser, "create-registry", async (page, berth) => {
    await signIn(page, berth);
    // Keyboard only: tab to the button and press Enter.
    const create = page.getByRole("link", { name: "+ New Artifact Registry" });
    await create.focus();
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "New Artifact Registry" }).waitFor();

    const name = page.getByLabel("Registry name");
    for (const bad of ["Team-images", "1team", "team-", "team..images", "team images"]) {
      await name.fill(bad);
      const shown = await errorOf(page, "name").textContent();
      const refused = await berth.api("POST", "/api/v1/registries", {
        name: bad,
        package_type: "DOCKER",
      });
      assert.equal(refused.status, 400, bad);
      assert.equal(shown, refused.body.message, `the form and the API disagree about ${bad}`);
      assert.equal(await name.getAttribute("aria-invalid"), "true");
    }
    await page.getByRole("button", { name: "Create Registry" }).click();
    assert.equal(
      await page.getByRole("heading", { level: 1 }).textContent(),
      "New Artifact Registry",
    );

    await name.fill("team-images");
    assert.equal(await errorOf(page, "name").textContent(), "");
    await page.getByLabel("Description (optional)").fill("Images built by the platform team");
    await page.getByLabel("Labels (optional)").fill("prod, team-platform");
    await page.getByRole("button", { name: "Create Registry" }).click();
    await page.getByRole("heading", { name: "team-images", level: 1 }).waitFor();
    const usage = await page.locator(".snippet pre").textContent();
    assert.match(usage, new RegExp(`docker pull ${berth.host}/team-images/`));
    assert.match(usage, new RegExp(`docker login ${berth.host}`));

    const stored = await berth.api("GET", "/api/v1/registries/team-images");
    assert.equal(stored.body.package_type, "DOCKER");
    assert.equal(stored.body.description, "Images built by the platform team");
    assert.deepEqual(stored.body.labels, ["prod", "team-platform"]);

    // The same name again: the server's refusal shows at the name, and nothing typed is lost.
    await page.goto(`${berth.url}/#/new/registry`);
    await name.fill("team-images");
    await page.getByLabel("Description (optional)").fill("a second try");
    await page.getByRole("button", { name: "Create Registry" }).click();
    await eventually(async () =>
      assert.match(await errorOf(page, "name").textContent(), /already exists/),
    );
    assert.equal(await name.inputValue(), "team-images");
    assert.equal(await page.getByLabel("Description (optional)").inputValue(), "a second try");
  });
});

test("upstream proxies are created for Docker Hub with credentials and for a Helm repository", async () => {
  await withConsole(browser, "create-upstream-proxies", async (page, berth) => {
    await signIn(page, berth);
    await page.getByRole("button", { name: "More things to create" }).click();
    await page.getByRole("menuitem", { name: "Upstream Proxy" }).click();
    await page.getByRole("heading", { name: "New Upstream Proxy" }).waitFor();

    await page.getByLabel("Upstream proxy key").fill("dockerhub");
    assert.equal(await page.getByLabel("Docker Hub").isChecked(), true);
    assert.equal(await page.getByLabel("Remote registry URL").isVisible(), false);
    await page.getByLabel("Username and password").check();
    await page.getByLabel("Username", { exact: true }).fill("ci-bot");
    await page.getByLabel("Password", { exact: true }).fill("s3cret-pass");
    await page.getByLabel(/Public: anyone may pull through it/).check();
    await page.getByRole("button", { name: "Create Upstream Proxy" }).click();
    await page.getByRole("heading", { name: "dockerhub", level: 1 }).waitFor();
    assert.match(
      await page.locator(".snippet pre").textContent(),
      new RegExp(`docker pull ${berth.host}/dockerhub/library/nginx`),
    );
    const hub = await berth.api("GET", "/api/v1/upstream-proxies/dockerhub");
    assert.equal(hub.body.source, "DOCKER_HUB");
    assert.deepEqual(hub.body.auth, {
      type: "USERNAME_PASSWORD",
      username: "ci-bot",
      password_set: true,
    });
    assert.equal(hub.body.public, true);
    // Made private on its page, it stays private.
    const visibility = page.getByLabel(/Public: anyone may pull through it/);
    assert.equal(await visibility.isChecked(), true);
    await visibility.uncheck();
    await page.getByRole("button", { name: "Save changes" }).click();
    await eventually(async () => {
      const saved = await berth.api("GET", "/api/v1/upstream-proxies/dockerhub");
      assert.equal(saved.body.public, false);
    });
    // Nothing is cached yet, and the purge says so in the API's count.
    await page.getByRole("button", { name: "Purge cached tags" }).click();
    await eventually(async () =>
      assert.match(await page.getByRole("status").textContent(), /^Purged 0 cached tags/),
    );

    await page.goto(`${berth.url}/#/new/upstream-proxy`);
    await page.getByLabel("Helm").check();
    await page.getByLabel("Upstream proxy key").fill("charts");
    assert.equal(await page.getByLabel("Docker Hub").isVisible(), false);
    // A URL the server refuses: the message shows under the URL, and the key stays.
    await page.getByLabel("Remote repository URL").fill("ftp://charts.example.com");
    await page.getByRole("button", { name: "Create Upstream Proxy" }).click();
    await eventually(async () => assert.match(await errorOf(page, "url").textContent(), /url/i));
    assert.equal(await page.getByLabel("Upstream proxy key").inputValue(), "charts");

    await page.getByLabel("Remote repository URL").fill("https://charts.example.com/stable");
    await page.getByRole("button", { name: "Create Upstream Proxy" }).click();
    await page.getByRole("heading", { name: "charts", level: 1 }).waitFor();
    assert.match(
      await page.locator(".snippet pre").textContent(),
      new RegExp(`helm repo add charts http://${berth.host}/helm/charts`),
    );
    const helm = await berth.api("GET", "/api/v1/upstream-proxies/charts");
    assert.equal(helm.body.package_type, "HELM");
    assert.equal(helm.body.url, "https://charts.example.com/stable");
    assert.equal(helm.body.auth.type, "ANONYMOUS");
    await page.getByRole("button", { name: "Purge cached index" }).click();
    await eventually(async () =>
      assert.match(await page.getByRole("status").textContent(), /remote's index is asked for/),
    );
  });
});

test("a proxy attached to a registry shows in the list, and the history shows the change", async () => {
  await withConsole(browser, "attach-and-history", async (page, berth) => {
    assert.equal(
      (
        await berth.api("POST", "/api/v1/upstream-proxies", {
          key: "dockerhub",
          package_type: "DOCKER",
          source: "DOCKER_HUB",
        })
      ).status,
      201,
    );
    assert.equal(
      (
        await berth.api("POST", "/api/v1/registries", {
          name: "team-images",
          package_type: "DOCKER",
        })
      ).status,
      201,
    );
    await signIn(page, berth);

    await page.getByRole("link", { name: "team-images" }).click();
    await page.getByRole("heading", { name: "team-images", level: 1 }).waitFor();
    await eventually(async () =>
      assert.equal(await page.locator("#upstream-add").inputValue(), "dockerhub"),
    );
    await page.getByRole("button", { name: "Add" }).click();
    await page.getByRole("button", { name: "Save changes" }).click();
    await eventually(async () => assert.equal(await page.locator("#saved").textContent(), "2"));
    assert.deepEqual((await berth.api("GET", "/api/v1/registries/team-images")).body.upstreams, [
      "dockerhub",
    ]);

    // The history lists both changes, with what the second one changed.
    const history = page.locator(".history > li");
    await eventually(async () => assert.equal(await history.count(), 2));
    const types = await page.locator(".history .event-type").allTextContents();
    assert.deepEqual(types.sort(), ["RegistryCreated", "RegistryUpstreamsSet"]);
    const change = page
      .locator(".history > li", { hasText: "RegistryUpstreamsSet" })
      .locator(".changes tbody tr");
    assert.deepEqual(await change.locator("td").allTextContents(), [
      "upstreams",
      "[]",
      '["dockerhub"]',
    ]);
    assert.match(await page.locator(".history .actor").first().textContent(), /console-tester/);

    // Viewed as of its creation, the registry has no upstreams yet.
    const created = page.locator(".history > li", { hasText: "RegistryCreated" });
    await created.getByRole("button", { name: "View as of" }).click();
    await page.locator(".as-of h3").waitFor();
    assert.match(await page.locator(".as-of h3").textContent(), /version 1/);
    const upstreamsThen = page
      .locator(".as-of dt", { hasText: /^upstreams$/ })
      .locator("xpath=following-sibling::dd[1]");
    assert.equal(await upstreamsThen.textContent(), "[]");
    await snap(page, "history-as-of");

    // Both appear in the list, the registry naming its upstream; search and filter narrow it.
    await page.getByRole("link", { name: "Registries", exact: true }).first().click();
    const rows = page.locator("tbody tr");
    await eventually(async () => assert.equal(await rows.count(), 2));
    assert.match(await rows.nth(1).textContent(), /team-images.*Registry.*Docker.*dockerhub/);
    assert.match(await rows.nth(0).textContent(), /dockerhub.*Upstream proxy.*Docker Hub/);
    await page.getByLabel("Search").fill("team");
    await eventually(async () => assert.equal(await rows.count(), 1));
    await page.getByLabel("Search").fill("");
    await page.getByLabel("Package type").selectOption("HELM");
    await eventually(async () =>
      assert.equal(await page.getByRole("status").textContent(), "Nothing matches."),
    );
  });
});

/** Pushes a one-layer image over the OCI API, as a client would. */
async function pushImage(berth, repository, tag) {
  const auth = { Authorization: `Bearer ${berth.token}` };
  const blob = async (text) => {
    const bytes = Buffer.from(text);
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const url = `${berth.url}/v2/${repository}/blobs/uploads/?digest=${digest}`;
    const response = await fetch(url, { method: "POST", headers: auth, body: bytes });
    assert.equal(response.status, 201, await response.text());
    return { digest, size: bytes.length };
  };
  const config = await blob(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    }),
  );
  const layer = await blob("the layer's bytes");
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", ...layer }],
  };
  const response = await fetch(`${berth.url}/v2/${repository}/manifests/${tag}`, {
    method: "PUT",
    headers: { ...auth, "Content-Type": manifest.mediaType },
    body: JSON.stringify(manifest),
  });
  assert.equal(response.status, 201, await response.text());
  return response.headers.get("Docker-Content-Digest");
}

test("a registry's page lists the images pushed to it with their tags", async () => {
  await withConsole(browser, "artifacts", async (page, berth) => {
    await berth.api("POST", "/api/v1/registries", { name: "team-images", package_type: "DOCKER" });
    const digest = await pushImage(berth, "team-images/tools/app", "1.0");
    await signIn(page, berth);
    await page.goto(`${berth.url}/#/registries/team-images`);
    const repository = page.locator(".repositories > li", { hasText: "tools/app" });
    await repository.getByRole("button", { name: "Show tags" }).click();
    const tag = repository.locator(".tags li");
    await eventually(async () => assert.match(await tag.textContent(), /^1\.0 /));
    assert.equal(await tag.locator(".digest").getAttribute("title"), digest);
  });
});

test("a proxy in use cannot be deleted, and deleting after typing the name removes it", async () => {
  await withConsole(browser, "delete", async (page, berth) => {
    await berth.api("POST", "/api/v1/upstream-proxies", {
      key: "dockerhub",
      package_type: "DOCKER",
      source: "DOCKER_HUB",
    });
    await berth.api("POST", "/api/v1/registries", {
      name: "team-images",
      package_type: "DOCKER",
      upstreams: ["dockerhub"],
    });
    await signIn(page, berth);
    await page.goto(`${berth.url}/#/upstream-proxies/dockerhub`);
    const confirm = page.getByLabel("Type dockerhub to delete this upstream proxy");
    const remove = page.getByRole("button", { name: "Delete upstream proxy" });
    await confirm.fill("dockerhu");
    assert.equal(await remove.isDisabled(), true);
    await confirm.fill("dockerhub");
    await remove.click();
    await eventually(async () =>
      assert.match(await errorOf(page, "confirm-delete").textContent(), /team-images/),
    );
    assert.equal((await berth.api("GET", "/api/v1/upstream-proxies/dockerhub")).status, 200);

    await page.goto(`${berth.url}/#/registries/team-images`);
    await page.getByLabel("Type team-images to delete this registry").fill("team-images");
    await page.getByRole("button", { name: "Delete registry" }).click();
    await page.getByRole("heading", { name: "Registries", level: 1 }).waitFor();
    await eventually(async () =>
      assert.deepEqual(await page.locator("tbody th").allTextContents(), ["dockerhub"]),
    );
    assert.equal((await berth.api("GET", "/api/v1/registries/team-images")).status, 404);
  });
});

test("the list pages through registries and proxies merged in name order", async () => {
  await withConsole(browser, "paging", async (page, berth) => {
    const names = [];
    for (let i = 0; i < 24; i++) {
      const name = `reg-${String(i).padStart(2, "0")}`;
      names.push(name);
      assert.equal(
        (await berth.api("POST", "/api/v1/registries", { name, package_type: "HELM" })).status,
        201,
      );
    }
    for (const key of ["proxy-a", "reg-05-mirror"]) {
      names.push(key);
      assert.equal(
        (
          await berth.api("POST", "/api/v1/upstream-proxies", {
            key,
            package_type: "HELM",
            url: "https://charts.example.com",
          })
        ).status,
        201,
      );
    }
    names.sort();
    await signIn(page, berth);
    const shown = () => page.locator("tbody th").allTextContents();
    await eventually(async () => assert.deepEqual(await shown(), names.slice(0, 20)));
    await page.getByRole("button", { name: "Next" }).click();
    await eventually(async () => assert.deepEqual(await shown(), names.slice(20)));
    assert.equal(await page.getByRole("button", { name: "Next" }).isDisabled(), true);
    await page.getByRole("button", { name: "Previous" }).click();
    await eventually(async () => assert.deepEqual(await shown(), names.slice(0, 20)));
    await page.getByLabel("Show").selectOption("proxy");
    await eventually(async () => assert.deepEqual(await shown(), ["proxy-a", "reg-05-mirror"]));
  });
});

test("the console works at a phone's width", async () => {
  await withConsole(
    browser,
    "phone-form",
    async (page, berth) => {
      await berth.api("POST", "/api/v1/registries", {
        name: "team-images",
        package_type: "DOCKER",
        description: "Images built by the platform team",
        labels: ["prod"],
      });
      await signIn(page, berth);
      await page.locator("tbody tr").first().waitFor();
      const overflow = () =>
        page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok((await overflow()) <= 0, "the page scrolls sideways");
      await snap(page, "phone-list");
      await page.getByRole("link", { name: "+ New Artifact Registry" }).click();
      await page.getByLabel("Registry name").fill("Bad");
      await page.locator("#name-error").waitFor();
      assert.ok((await overflow()) <= 0, "the form scrolls sideways");
    },
    { viewport: { width: 390, height: 844 } },
  );
});
