//! `cargo instrument control list|set`: the agents a running collector's OpAMP server
//! knows, and pushing a remote config to one of them or to a whole service. A thin front
//! over the collector's viewer API (`/api/agents`, `/api/{agents,services}/…/config`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use instgo_collector::client::{Endpoint, Target};
use instgo_collector::opamp::agents::AgentView;

use crate::collect::{token, value};

const HELP: &str = "cargo instrument control: see and reconfigure running instrumented programs

    cargo instrument control list [--verbose]
    cargo instrument control set (--agent UID | --service NAME) --file CONFIG.toml

The programs report to the bundled collector's OpAMP server (INSTGO_OPAMP_ENDPOINT,
default http://127.0.0.1:4320/v1/opamp). `set` pushes CONFIG.toml; each program applies it
at its next poll (INSTGO_OPAMP_INTERVAL, default 30s) and reports APPLIED, or FAILED with
the reason while it keeps running as before. An empty file takes the remote settings back.

    disabled_rules = [\"reqwest*\"]        # rule names or globs
    sampling_ratio = 0.25                # of new traces; children follow their parent
    [rules.\"axum\"]
    capture_headers = [\"x-request-id\"]   # options the rule declares

OPTIONS:
    --endpoint URL  the collector's viewer address (default http://127.0.0.1:4319)
    --token-file F  the collector's token (or INSTGO_COLLECTOR_TOKEN)
    --ca-file F     a CA to trust for an https:// endpoint, beside the system's
    --verbose       (list) each agent's attributes and effective config too";

pub fn control(args: &[String]) -> Result<ExitCode> {
    let Some(verb) = args.first() else {
        println!("{HELP}");
        bail!("control needs `list` or `set`");
    };
    let mut endpoint = format!("http://{}", instgo_collector::DEFAULT_UI);
    let (mut token_file, mut ca_file) = (None, None::<PathBuf>);
    let (mut agent, mut service, mut file) = (None, None, None::<PathBuf>);
    let mut verbose = false;
    let mut i = 1;
    while i < args.len() {
        if let Some(v) = value(args, &mut i, "--endpoint")? {
            endpoint = v;
        } else if let Some(v) = value(args, &mut i, "--token-file")? {
            token_file = Some(v);
        } else if let Some(v) = value(args, &mut i, "--ca-file")? {
            ca_file = Some(PathBuf::from(v));
        } else if let Some(v) = value(args, &mut i, "--agent")? {
            agent = Some(v);
        } else if let Some(v) = value(args, &mut i, "--service")? {
            service = Some(v);
        } else if let Some(v) = value(args, &mut i, "--file")? {
            file = Some(PathBuf::from(v));
        } else if args[i] == "--verbose" || args[i] == "-v" {
            verbose = true;
        } else if args[i] == "-h" || args[i] == "--help" {
            println!("{HELP}");
            return Ok(ExitCode::SUCCESS);
        } else {
            bail!(
                "unknown control option {:?}; see `cargo instrument control --help`",
                args[i]
            );
        }
        i += 1;
    }
    let api =
        Endpoint::new(&endpoint, ca_file.as_deref())?.with_token(token(token_file.as_deref())?);
    match verb.as_str() {
        "list" => {
            let agents = api.agents()?;
            print!("{}", table(&agents, now_ms(), verbose));
            Ok(ExitCode::SUCCESS)
        }
        "set" => {
            let target = match (agent, service) {
                (Some(a), None) => Target::Agent(a),
                (None, Some(s)) => Target::Service(s),
                _ => bail!("control set needs one of --agent UID or --service NAME"),
            };
            let path = file.context("control set needs --file CONFIG.toml")?;
            let config = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
            let (hash, n) = api.push(&target, &config)?;
            let whom = match &target {
                Target::Agent(a) => format!("agent {a}"),
                Target::Service(s) => format!("service {s:?} ({n} agent(s) connected now)"),
            };
            println!(
                "pushed {} to {whom}: config {}; each applies it at its next poll \
                 (see `cargo instrument control list`)",
                path.display(),
                &hash[..12.min(hash.len())]
            );
            Ok(ExitCode::SUCCESS)
        }
        "-h" | "--help" => {
            println!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("control {other:?}: expected list or set"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn ago(ms: u64) -> String {
    match ms / 1000 {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3600),
    }
}

/// One line per agent: id, service, health, the pushed config's status, last report.
fn table(agents: &[AgentView], now: u64, verbose: bool) -> String {
    use std::fmt::Write as _;
    if agents.is_empty() {
        return "no agents have reported (programs built with `cargo instrument` report to \
                the collector's OpAMP address, INSTGO_OPAMP_ENDPOINT)\n"
            .into();
    }
    let mut out = format!(
        "{:<36}  {:<16}  {:<8}  {:<24}  {}\n",
        "AGENT", "SERVICE", "HEALTH", "CONFIG", "LAST SEEN"
    );
    for a in agents {
        let health = match &a.health {
            _ if a.disconnected => "gone".to_string(),
            Some(h) if h.healthy => "ok".into(),
            Some(_) => "failing".into(),
            None => "-".into(),
        };
        let config = match (&a.offered, &a.remote_config_status) {
            (None, _) => "-".to_string(),
            (Some(o), Some(s)) if s.hash == o.hash => {
                format!("{} ({})", s.status.to_lowercase(), o.scope)
            }
            (Some(o), _) => format!("pending ({})", o.scope),
        };
        let _ = writeln!(
            out,
            "{:<36}  {:<16}  {:<8}  {:<24}  {}",
            a.uid,
            a.service.as_deref().unwrap_or("-"),
            health,
            config,
            ago(now.saturating_sub(a.last_seen_unix_ms))
        );
        if let Some(s) = a
            .remote_config_status
            .as_ref()
            .filter(|s| s.status == "FAILED")
        {
            let _ = writeln!(out, "    config failed: {}", s.error);
        }
        if let Some(h) = a.health.as_ref().filter(|h| !h.healthy) {
            let _ = writeln!(out, "    {}: {}", h.status, h.last_error);
        }
        if verbose {
            if !a.transport.is_empty() {
                let _ = writeln!(out, "    over {}", a.transport);
            }
            for (k, v) in a.identifying.iter().chain(&a.non_identifying) {
                let _ = writeln!(out, "    {k} = {v}");
            }
            for (name, text) in &a.effective_config {
                let _ = writeln!(out, "    effective {name}:");
                for line in text.lines() {
                    let _ = writeln!(out, "      {line}");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use instgo_collector::opamp::agents::{ConfigStatus, Health, Offered};

    #[test]
    fn the_table_says_what_failed() {
        let a = AgentView {
            uid: "0190b8a4-0000-7000-8000-000000000001".into(),
            service: Some("gateway".into()),
            identifying: vec![("service.name".into(), "gateway".into())],
            non_identifying: vec![],
            capabilities: 1,
            health: Some(Health {
                healthy: true,
                status: "exporting".into(),
                last_error: String::new(),
                start_time_unix_nano: 0,
            }),
            effective_config: [(
                "instgo.toml".to_string(),
                "sampling_ratio = 1.0\n".to_string(),
            )]
            .into(),
            remote_config_status: Some(ConfigStatus {
                status: "FAILED".into(),
                error: "sampling_ratio = 7: must be between 0 and 1".into(),
                hash: "ab".into(),
            }),
            offered: Some(Offered {
                scope: "service".into(),
                hash: "ab".into(),
                body: String::new(),
            }),
            last_seen_unix_ms: 1_000,
            sequence_num: 3,
            disconnected: false,
            transport: "websocket".into(),
        };
        let t = table(&[a], 4_000, true);
        assert!(
            t.contains("gateway           ok        failed (service)"),
            "{t}"
        );
        assert!(t.contains("3s ago"));
        assert!(t.contains("    over websocket\n"));
        assert!(t.contains("config failed: sampling_ratio = 7"));
        assert!(t.contains("      sampling_ratio = 1.0"));
        assert!(table(&[], 0, false).starts_with("no agents"));
    }
}
