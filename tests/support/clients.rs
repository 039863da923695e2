//! The real registry clients the tests drive from the command line: skopeo, and the oras Python
//! SDK through the scripts in `tests/clients/`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs skopeo with `args`, whatever it answers.
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is needed (make test installs it)")
}

/// Runs skopeo with `args`, which must succeed.
pub fn skopeo_ok(args: &[&str]) -> Output {
    let output = skopeo(args);
    assert!(
        output.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Copies the image tagged `tag` in the OCI layout at `layout` to `<host>/<repository>:<tag>`
/// over plain HTTP, with `creds` (`user:password`) when given; skopeo must succeed.
pub fn skopeo_push(layout: &Path, tag: &str, host: &str, repository: &str, creds: Option<&str>) {
    let source = format!("oci:{}:{tag}", layout.display());
    let target = format!("docker://{host}/{repository}:{tag}");
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--dest-creds", creds]);
    }
    args.extend([source.as_str(), target.as_str()]);
    skopeo_ok(&args);
}

/// Runs `tests/clients/<script>` with the oras SDK installed in `.tools/venv`, in `work`
/// (its home too, so that the credentials oras writes stay there), and returns the JSON object
/// the script printed last. The script must succeed.
pub fn oras_script(script: &str, args: &[&str], work: &Path) -> Value {
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new(format!("{root}/.tools/venv/bin/python"))
        .arg(format!("{root}/tests/clients/{script}"))
        .args(args)
        .arg(work)
        .env("HOME", work)
        .env("DOCKER_CONFIG", work.join(".docker"))
        .output()
        .expect("the oras SDK is needed (make test installs it into .tools/venv)");
    assert!(
        output.status.success(),
        "{script} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}
