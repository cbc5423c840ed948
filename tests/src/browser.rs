//! A headless Chromium driven over the DevTools protocol on a pipe
//! (`--remote-debugging-pipe`: commands on fd 3, replies on fd 4, each a
//! JSON message ended by NUL). No port, no WebSocket, no driver binary.

use std::{
    fs::File,
    io::{BufRead, BufReader, Write},
    os::fd::{FromRawFd, RawFd},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::{Value, json};

/// Debian's chromium, unless `SUANLI_CHROMIUM` names another; a test
/// that asks for it is `#[ignore = "needs Chromium: run .ci/test"]`.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("SUANLI_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !path.is_file() {
        crate::component::missing("Chromium", &path.display().to_string());
    }
    crate::component::found("Chromium");
    path
}

#[derive(Debug)]
pub struct Browser {
    child: Child,
    commands: File,
    replies: mpsc::Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2");
    (fds[0], fds[1])
}

impl Browser {
    /// Starts Chromium and opens one page at `url`.
    pub fn open(binary: &Path, url: &str) -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let (browser_reads, we_write) = pipe();
        let (we_read, browser_writes) = pipe();
        let mut command = Command::new(binary);
        command
            .args([
                "--headless",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only fcntl and dup2 between fork and exec, both
        // async-signal-safe; dup2 clears close-on-exec on fds 3 and 4.
        unsafe {
            command.pre_exec(move || {
                // Copy above 10 first: a pipe fd may itself be 3 or 4, and
                // dup2 onto itself would keep close-on-exec.
                let reads = libc::fcntl(browser_reads, libc::F_DUPFD, 10);
                let writes = libc::fcntl(browser_writes, libc::F_DUPFD, 10);
                if reads < 0 || writes < 0 || libc::dup2(reads, 3) < 0 || libc::dup2(writes, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        // SAFETY: these fds came from pipe2 above and are owned from here on.
        let (commands, replies_file) = unsafe {
            libc::close(browser_reads);
            libc::close(browser_writes);
            (File::from_raw_fd(we_write), File::from_raw_fd(we_read))
        };
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(replies_file);
            let mut message = Vec::new();
            while reader.read_until(0, &mut message).is_ok_and(|n| n > 0) {
                message.pop();
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && value.get("id").is_some()
                    && tx.send(value).is_err()
                {
                    return;
                }
                message.clear();
            }
        });
        let mut browser = Self {
            child,
            commands,
            replies,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": url}), None);
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
            None,
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        browser
    }

    fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.call_within(method, params, session, Duration::from_secs(30))
            .unwrap_or_else(|error| panic!("{method}: {error}"))
    }

    /// Sends one command and waits for its reply: the result, or the error.
    fn call_within(
        &mut self,
        method: &str,
        params: Value,
        session: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        loop {
            let reply = self
                .replies
                .recv_timeout(timeout)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if reply["id"] == id {
                return match reply.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(reply["result"].clone()),
                };
            }
        }
    }

    /// Signs in with a generated password and, as the console asks before
    /// anything else, sets `new` in its place.
    pub fn sign_in_changing_password(&mut self, login: &str, generated: &str, new: &str) {
        self.sign_in(login, generated);
        let wait = Duration::from_secs(30);
        self.wait_for(
            wait,
            "the forced password change",
            "!!document.getElementById('must-change') && !document.getElementById('hosts-online')",
        );
        self.eval(&format!(
            "(() => {{ const f = document.getElementById('password-form');
                f.password.value = {generated:?}; f.new_password.value = {new:?};
                document.getElementById('password-submit').click(); return true; }})()"
        ));
        self.wait_for(
            wait,
            "the console after the change",
            "!document.getElementById('must-change') && !!document.getElementById('main')?.firstChild?.firstChild",
        );
    }

    /// Fills the dashboard's sign-in form and submits it.
    pub fn sign_in(&mut self, login: &str, password: &str) {
        self.eval(&format!(
            "(() => {{ const f = document.getElementById('login-form');
                f.login.value = {login:?}; f.password.value = {password:?};
                document.getElementById('login-submit').click(); return true; }})()"
        ));
    }

    pub fn eval(&mut self, expression: &str) -> Value {
        self.eval_within(expression, Duration::from_secs(30))
    }

    fn eval_within(&mut self, expression: &str, timeout: Duration) -> Value {
        let session = self.session.clone();
        let mut navigations = 0;
        let result = loop {
            match self.call_within(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
                Some(&session),
                timeout,
            ) {
                Ok(result) => break result,
                // The page navigated while the script ran (the first load
                // replacing about:blank, a reload): ask the new page.
                Err(error)
                    if (error.to_string().contains("context")
                        || error.to_string().contains("navigated"))
                        && navigations < 20 =>
                {
                    navigations += 1;
                }
                Err(error) => panic!("{expression}: {error}"),
            }
        };
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression}: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression over the page) is
    /// true; panics with `what` after `timeout`. The page itself waits: it
    /// re-checks on every change to the document (a MutationObserver), and
    /// answers once, so nothing here sleeps or polls.
    pub fn wait_for(&mut self, timeout: Duration, what: &str, condition: &str) {
        let script = format!(
            "new Promise((resolve) => {{
                const holds = () => {{ try {{ return ({condition}) === true; }} catch (e) {{ return false; }} }};
                if (holds()) return resolve(true);
                const done = (ok) => {{ observer.disconnect(); clearTimeout(timer); resolve(ok); }};
                const observer = new MutationObserver(() => {{ if (holds()) done(true); }});
                observer.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
                const timer = setTimeout(() => done(holds()), {ms});
            }})",
            ms = timeout.as_millis()
        );
        if self.eval_within(&script, timeout + Duration::from_secs(10)) != json!(true) {
            panic!(
                "timed out waiting for {what}; page: {}",
                self.eval("document.body.innerText.slice(0, 2000)")
            );
        }
    }

    /// Lays the page out `width` CSS pixels wide, as Chrome's device
    /// emulation does (a phone below 600).
    pub fn set_width(&mut self, width: u32) {
        let session = self.session.clone();
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}),
            Some(&session),
        );
    }

    /// Whether the page is wider than its window: something a reader
    /// would have to scroll sideways for.
    pub fn overflows(&mut self) -> bool {
        self.eval("document.documentElement.scrollWidth > window.innerWidth + 1")
            .as_bool()
            .unwrap_or(true)
    }

    /// Text on the page in the other language: in a Chinese page, a word of
    /// English (three letters or more, not all capitals: GPU and FLOPS are
    /// the same in both); in an English page, any Chinese character. What
    /// the page shows as data is left out: elements marked
    /// `translate="no"` (hostnames, identifiers, what people typed), code
    /// (`.mono`, `code`, `pre`), and any word that also stands in such an
    /// element on the page (a hostname inside an alert's summary). Text,
    /// `title`, `placeholder` and `aria-label` are read; visible or not.
    pub fn untranslated(&mut self) -> Vec<String> {
        let found = self.eval(UNTRANSLATED);
        found
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("the check failed: {found}")])
    }

    /// A PNG of the page as it is now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let session = self.session.clone();
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png"}),
            Some(&session),
        );
        decode_base64(shot["data"].as_str().expect("screenshot data"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// See [`Browser::untranslated`]. Words the same in both languages: names
/// of products and technologies, and units.
const UNTRANSLATED: &str = r##"(() => {
  const zh = document.documentElement.lang === "zh-CN";
  const same = new Set(["Suanli", "NVIDIA", "NVLink", "InfiniBand", "Slurm", "Alertmanager", "DingTalk",
    "WeCom", "Feishu", "Prometheus", "Grafana", "Bearer", "agent", "scontrol", "Webhook", "GiB", "MiB", "TiB", "KiB", "Gbps", "Mbps",
    "GFLOPS", "TFLOPS", "PFLOPS", "EFLOPS", "CPU", "GPU", "NPU", "XID", "ECC", "HBM", "PCIe", "NVML",
    "DCMI", "CNDev", "Ascend", "Hygon", "Cambricon", "Iluvatar", "AMD", "ROCm", "CEL", "JSON", "API",
    "URL", "TLS", "QUIC", "SMTP", "HTTPS", "HTTP", "USCC", "FP32", "FP16", "BF16", "INT8", "TF32",
    // A unit of the GPU, as NVIDIA's XID catalog names it.
    "NVLPW_CTRL"]);
  const dataSelector = '[translate="no"], .mono, code, pre, script, style, #lang';
  const dataWords = new Set();
  for (const e of document.querySelectorAll('[translate="no"], .mono, code, pre')) {
    for (const w of (e.textContent || "").split(/[^A-Za-z0-9_.-]+/)) if (w) dataWords.add(w);
  }
  const english = (text) => {
    // Tokens joined by - _ . / : or digits are names and codes (cpu-node-03, host_silent, 10.0.0.1).
    for (const token of text.split(/[\s,;()（）：，；、"'「」\[\]{}·|=<>]+/)) {
      if (!token || dataWords.has(token) || dataWords.has(token.replace(/[.:!?]+$/, ""))) continue;
      // A vendor's constant (SW_THERMAL_SLOWDOWN) is words to translate, not a name.
      if (/^[A-Z]+(_[A-Z]+)+$/.test(token) && !same.has(token)) return true;
      if (/[0-9_\/@]|[a-z][.-][a-z]/i.test(token)) continue;
      for (const word of token.match(/[A-Za-z]{3,}/g) || []) {
        if (/[a-z]/.test(word) && !same.has(word) && !dataWords.has(word)) return true;
      }
    }
    return false;
  };
  const chinese = (text) => /[\u3400-\u9fff]/.test(text);
  const wrong = zh ? english : chinese;
  const found = new Set();
  const root = document.body;
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(dataSelector)) continue;
    const text = n.textContent.trim();
    if (text && wrong(text)) found.add(`${p.tagName.toLowerCase()}${p.id ? "#" + p.id : ""}: ${text.slice(0, 120)}`);
  }
  for (const e of root.querySelectorAll("[title], [placeholder], [aria-label]")) {
    if (e.closest(dataSelector)) continue;
    for (const a of ["title", "placeholder", "aria-label"]) {
      const text = e.getAttribute(a);
      if (text && wrong(text)) found.add(`${e.tagName.toLowerCase()}[${a}]: ${text.slice(0, 120)}`);
    }
  }
  return [...found];
})()"##;

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::decode_base64("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(super::decode_base64("AAEC"), [0, 1, 2]);
    }
}
