//! What the logs cost: server CPU per delta of long replies with logging off and at the
//! default level (`info`), on two servers taking turns.

use super::BenchResult;
use super::client::{self, Client};
use super::process::ServerProcess;
use super::report::{Row, Unit, thousands};
use super::scenarios::{Bench, SCRIPTED, long_turn, ticks_to_micros};

/// Chunks of each reply, and replies per server: about two seconds of server CPU each, so that
/// the 10 ms resolution of the CPU counters is half a percent of it.
const DELTAS: usize = 10_000;
const REPLIES: usize = 60;

impl Bench<'_> {
    /// Long replies on a server logging at `info` and on one with `--log-level off`, one reply
    /// each in turn, the first of each round alternating (so that a machine getting busier, or
    /// going second, affects both alike): the CPU per delta of each and the difference (target:
    /// at most 5 %).
    pub async fn logging_suite(&mut self) -> BenchResult<()> {
        let mut servers = Vec::new();
        for level in ["info", "off"] {
            let server = ServerProcess::start(self.binary, &[("RUST_LOG", level.to_owned())]).await?;
            let mut client = Client::connect(&server.url).await?;
            let runtime = client::start_runtime(&mut client, "rs-logging", SCRIPTED.model)
                .await?
                .runtime;
            long_turn(&mut client, &runtime, "warm-up", DELTAS).await?;
            servers.push((level, server, client, runtime, 0));
        }
        for reply in 0..REPLIES {
            servers.reverse();
            for (_, server, client, runtime, ticks) in &mut servers {
                let before = server.cpu_ticks()?;
                long_turn(client, runtime, &format!("long-{reply}"), DELTAS).await?;
                *ticks += server.cpu_ticks()?.saturating_sub(before);
            }
        }
        // REPLIES is even: the `info` server is first again.
        let deltas = (DELTAS * REPLIES) as f64;
        let mut per_delta = Vec::new();
        for (level, server, client, _, ticks) in servers {
            let micros = ticks_to_micros(ticks) / deltas;
            per_delta.push(micros);
            self.rows.push(
                Row::new(
                    &format!("logging {level}: server CPU per delta"),
                    SCRIPTED.name,
                    micros,
                    Unit::Micros,
                    None,
                )
                .detail(format!("{ticks} ticks / {} deltas", thousands(deltas as u64))),
            );
            client.close().await;
            self.stop(server).await;
        }
        let cost = (per_delta[0] / per_delta[1] - 1.0) * 100.0;
        self.rows.push(
            Row::new(
                "logging at info: CPU per delta over logging off",
                SCRIPTED.name,
                cost,
                Unit::Percent,
                Some(5.0),
            )
            .detail("the two rows above"),
        );
        Ok(())
    }
}
