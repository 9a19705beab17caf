//! `streamctl game --session S --player P`: typed commands in, session states out.
//!
//! Commands: `move X,Y`, `attack [PLAYER]`, `defend`, `exit`. A line that is not a command is
//! answered on stderr and not sent, so a typo costs nothing; an action the server refuses
//! (outside the board, a knocked-out player) ends the stream with its status, as the
//! contract says, and the command exits 1. `exit` or the end of input leaves the session:
//! the server sends the last state and ends the stream, and the command exits 0.

use std::collections::HashMap;

use serde_json::{Value, json};
use streamhub_api::streaming::{GameAction, GameState};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Outcome,
    connect::Connection,
    input::stdin_lines,
    output::{Output, human_time, json_time},
};

/// Actions queued towards the server.
const SEND_QUEUE: usize = 16;

const USAGE: &str = "commands: move X,Y | attack [PLAYER] | defend | exit";

#[derive(clap::Args)]
pub(crate) struct GameArgs {
    /// The session to play in.
    #[arg(long, default_value = "default")]
    session: String,
    /// Who plays.
    #[arg(long)]
    player: String,
}

pub(crate) async fn run(connection: &Connection, output: &Output, args: GameArgs) -> Outcome {
    let mut client = connection.streaming().await?;
    let (actions, requests) = mpsc::channel(SEND_QUEUE);
    let action = |action_type: &str, parameters: HashMap<String, String>| GameAction {
        player_id: args.player.clone(),
        action_type: action_type.to_owned(),
        parameters,
        session_id: args.session.clone(),
    };
    // Take a seat at once, so the first state shows who is there.
    let _ = actions.send(action("JOIN", HashMap::new())).await;
    let mut states = client
        .game_session(ReceiverStream::new(requests))
        .await?
        .into_inner();
    let mut actions = Some(actions);
    let mut lines = stdin_lines();
    loop {
        tokio::select! {
            line = lines.recv(), if actions.is_some() => {
                let command = match line {
                    Some(Ok(line)) => parse_command(&line),
                    Some(Err(err)) => {
                        eprintln!("streamctl: reading standard input: {err}; leaving the session");
                        Ok(Command::Exit)
                    }
                    None => Ok(Command::Exit),
                };
                match command {
                    Ok(Command::Nothing) => {}
                    Ok(Command::Exit) => actions = None,
                    Ok(Command::Act(action_type, parameters)) => {
                        if let Some(sender) = &actions {
                            // Fails only when the call has ended; the states side says why.
                            let _ = sender.send(action(action_type, parameters)).await;
                        }
                    }
                    Err(problem) => eprintln!("streamctl: {problem}; {USAGE}"),
                }
            }
            state = states.message() => match state? {
                Some(state) => output.record(|| human(&state), || to_json(&state))?,
                None => return Ok(()),
            },
        }
    }
}

/// What one typed line asks for.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Act(&'static str, HashMap<String, String>),
    Exit,
    Nothing,
}

fn parse_command(line: &str) -> Result<Command, String> {
    let mut words = line.split_whitespace();
    let Some(verb) = words.next() else {
        return Ok(Command::Nothing);
    };
    let rest: Vec<&str> = words.collect();
    let parameter = |key: &str, value: String| HashMap::from([(key.to_owned(), value)]);
    match (verb.to_ascii_lowercase().as_str(), rest.as_slice()) {
        ("exit" | "quit", []) => Ok(Command::Exit),
        ("join", []) => Ok(Command::Act("JOIN", HashMap::new())),
        ("defend", []) => Ok(Command::Act("DEFEND", HashMap::new())),
        ("attack", []) => Ok(Command::Act("ATTACK", HashMap::new())),
        ("attack", [target]) => Ok(Command::Act(
            "ATTACK",
            parameter("target", (*target).to_owned()),
        )),
        ("move", position) if !position.is_empty() => {
            // `move 3,4`, `move 3 4` and `move 3, 4` all mean x=3, y=4.
            let joined = position.join(" ");
            let numbers: Vec<&str> = joined
                .split([',', ' '])
                .filter(|part| !part.is_empty())
                .collect();
            match numbers.as_slice() {
                [x, y] if x.parse::<i64>().is_ok() && y.parse::<i64>().is_ok() => Ok(Command::Act(
                    "MOVE",
                    parameter("position", format!("{x},{y}")),
                )),
                _ => Err(format!(
                    "move needs a position X,Y in whole numbers, got {joined:?}"
                )),
            }
        }
        _ => Err(format!("not a command: {:?}", line.trim())),
    }
}

/// Players in name order, so lines are stable from state to state.
fn players(state: &GameState) -> Vec<(&String, &streamhub_api::streaming::PlayerState)> {
    let mut players: Vec<_> = state.players.iter().collect();
    players.sort_by(|a, b| a.0.cmp(b.0));
    players
}

/// `[2026-01-02 15:04:05] tick 4 ONGOING | ann hp 100 score 10 at 3,4 | bob hp 90 ...`.
fn human(state: &GameState) -> String {
    let mut line = format!(
        "[{}] tick {} {}",
        human_time(state.timestamp.as_ref()),
        state.tick,
        state.game_status
    );
    for (id, player) in players(state) {
        line.push_str(&format!(
            " | {id} hp {} score {} at {}",
            player.health, player.score, player.position
        ));
    }
    line
}

fn to_json(state: &GameState) -> Value {
    json!({
        "session": state.session_id,
        "tick": state.tick,
        "status": state.game_status,
        "timestamp": json_time(state.timestamp.as_ref()),
        "players": players(state).into_iter().map(|(id, player)| json!({
            "player": id,
            "health": player.health,
            "score": player.score,
            "position": player.position,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn act(kind: &'static str, parameters: &[(&str, &str)]) -> Command {
        Command::Act(
            kind,
            parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn typed_commands_become_actions() {
        assert_eq!(
            parse_command("move 3,4"),
            Ok(act("MOVE", &[("position", "3,4")]))
        );
        assert_eq!(
            parse_command("MOVE 3 4"),
            Ok(act("MOVE", &[("position", "3,4")]))
        );
        assert_eq!(
            parse_command("move 3, 4"),
            Ok(act("MOVE", &[("position", "3,4")]))
        );
        assert_eq!(
            parse_command("attack bob"),
            Ok(act("ATTACK", &[("target", "bob")]))
        );
        assert_eq!(parse_command("attack"), Ok(act("ATTACK", &[])));
        assert_eq!(parse_command(" defend "), Ok(act("DEFEND", &[])));
        assert_eq!(parse_command("exit"), Ok(Command::Exit));
        assert_eq!(parse_command("   "), Ok(Command::Nothing));
    }

    #[test]
    fn a_typo_is_explained_not_sent() {
        assert!(parse_command("move").is_err());
        assert!(
            parse_command("move 3")
                .expect_err("one number")
                .contains("X,Y")
        );
        assert!(parse_command("move a,b").is_err());
        assert!(
            parse_command("dance")
                .expect_err("unknown")
                .contains("not a command")
        );
        assert!(parse_command("defend now").is_err());
    }
}
