//! How an apply's progress is shown, on stderr. On a terminal: a live view (indicatif) with a line
//! per step under way (what it waits for, and for how long) above a bar of steps finished out of the
//! total, and each finished step printed above them as it ends. Anywhere else (a pipe, a CI log, a
//! file): the same events as plain lines, one per event. Either way the command ends with a one-line
//! summary on stdout.

use crate::apply::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

/// Where progress goes.
pub(crate) enum View {
    Lines,
    Live(Live),
}

impl View {
    /// A live view when `live` (stderr is a terminal that can redraw), plain lines otherwise.
    pub(crate) fn new(live: bool) -> View {
        if live {
            View::Live(Live::new(ProgressDrawTarget::stderr(), colour()))
        } else {
            View::Lines
        }
    }

    /// Shows one event. Plain lines are written to `err`; the live view draws on the terminal.
    pub(crate) fn show(&mut self, ev: &Progress, err: &mut dyn Write) {
        match self {
            // Progress is for the reader: a closed stderr must not stop an apply half-way.
            View::Lines => {
                if let Some(line) = line(ev, true) {
                    let _ = writeln!(err, "{line}");
                }
            }
            View::Live(live) => live.show(ev),
        }
    }

    /// Clears the live lines (the finished steps printed above them stay).
    pub(crate) fn finish(&mut self) {
        if let View::Live(live) = self {
            live.finish();
        }
    }
}

/// Whether stderr's live view may use colour (`NO_COLOR` unset).
fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stderr can show a live view: a terminal that is not `dumb`.
pub(crate) fn stderr_is_live() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
        && std::env::var_os("CI").is_none()
}

/// The text of an event, as a plain line (`None`: nothing to say).
fn line(ev: &Progress, colour: bool) -> Option<String> {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    Some(match ev {
        Progress::Planned(_) => return None,
        Progress::Started(step) => format!("  {step}: started"),
        Progress::Waiting(step, what, waited) => {
            if waited.as_secs() == 0 {
                format!("  {step}: waiting for {what}")
            } else {
                format!("  {step}: still waiting for {what} ({}s)", waited.as_secs())
            }
        }
        Progress::Done(step, detail, took) => format!(
            "  {step}: {} in {:.1}s ({detail})",
            paint("32", "done"),
            took.as_secs_f64()
        ),
        Progress::Failed(step, why) => format!("  {step}: {}: {why}", paint("31;1", "failed")),
        Progress::Pending(step, why) => format!("  {step}: {} ({why})", paint("33;1", "pending")),
        Progress::Skipped(step, why) => format!("  {step}: {} ({why})", paint("33", "skipped")),
        Progress::Interrupted => format!(
            "{}: finishing the changes in progress, starting no new ones (Ctrl-C again stops at once)",
            paint("33;1", "interrupted")
        ),
    })
}

/// The live view.
pub(crate) struct Live {
    multi: MultiProgress,
    /// Steps finished out of all steps, at the bottom.
    bar: ProgressBar,
    /// A line per step under way, by step name.
    running: HashMap<String, ProgressBar>,
    colour: bool,
}

impl Live {
    pub(crate) fn new(target: ProgressDrawTarget, colour: bool) -> Live {
        let multi = MultiProgress::with_draw_target(target);
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{bar:32} {pos}/{len} steps  {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(250));
        Live {
            multi,
            bar,
            running: HashMap::new(),
            colour,
        }
    }

    fn show(&mut self, ev: &Progress) {
        match ev {
            Progress::Planned(total) => self.bar.set_length(*total as u64),
            Progress::Started(step) => {
                let line = self
                    .multi
                    .insert_before(&self.bar, ProgressBar::new_spinner());
                line.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix}: {wide_msg} {elapsed}")
                        .expect("a valid template"),
                );
                line.set_prefix(step.clone());
                line.set_message("running");
                line.enable_steady_tick(Duration::from_millis(120));
                self.running.insert(step.clone(), line);
            }
            Progress::Waiting(step, what, _) => {
                if let Some(line) = self.running.get(step) {
                    line.set_message(format!("waiting for {what}"));
                }
            }
            Progress::Done(step, ..)
            | Progress::Failed(step, _)
            | Progress::Pending(step, _)
            | Progress::Skipped(step, _) => {
                if let Some(line) = self.running.remove(step) {
                    line.finish_and_clear();
                    self.multi.remove(&line);
                }
                self.bar.inc(1);
                self.print(ev);
            }
            Progress::Interrupted => self.print(ev),
        }
    }

    fn print(&self, ev: &Progress) {
        if let Some(text) = line(ev, self.colour) {
            let _ = self.multi.println(text);
        }
    }

    fn finish(&mut self) {
        for (_, line) in self.running.drain() {
            line.finish_and_clear();
        }
        self.bar.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::InMemoryTerm;

    fn settle() {
        std::thread::sleep(Duration::from_millis(300));
    }

    #[test]
    fn the_live_view_shows_steps_under_way_with_their_wait_and_a_bar_of_steps_done() {
        let term = InMemoryTerm::new(12, 120);
        let mut live = Live::new(ProgressDrawTarget::term_like(Box::new(term.clone())), false);
        live.show(&Progress::Planned(4));
        live.show(&Progress::Started("aws.role[demo/r] create".into()));
        live.show(&Progress::Started("aws.association[orders] create".into()));
        live.show(&Progress::Waiting(
            "aws.association[orders] create".into(),
            "the partner event source of relay `orders`".into(),
            Duration::from_secs(3),
        ));
        live.show(&Progress::Done(
            "aws.role[demo/r] create".into(),
            "role r created".into(),
            Duration::from_millis(1200),
        ));
        settle();
        live.bar.tick();
        let screen = term.contents();
        // The finished step is printed above; the waiting one stays live, saying what it waits for.
        assert!(
            screen.contains("aws.role[demo/r] create: done in 1.2s (role r created)"),
            "{screen}"
        );
        assert!(
            screen.contains(
                "aws.association[orders] create: waiting for the partner event source of relay `orders`"
            ),
            "{screen}"
        );
        assert!(screen.contains("1/4 steps"), "{screen}");
        // No colour codes when colour is off, and no line left for the finished step.
        assert!(!screen.contains("\x1b["), "{screen:?}");
        assert_eq!(
            screen.matches("aws.role[demo/r] create").count(),
            1,
            "{screen}"
        );

        live.show(&Progress::Failed(
            "aws.association[orders] create".into(),
            "AccessDenied".into(),
        ));
        live.finish();
        settle();
        let screen = term.contents();
        assert!(
            screen.contains("aws.association[orders] create: failed: AccessDenied"),
            "{screen}"
        );
        assert!(
            !screen.contains("steps"),
            "the bar is cleared at the end:\n{screen}"
        );
    }

    #[test]
    fn plain_lines_say_the_same_one_event_per_line() {
        let mut out = Vec::new();
        let mut view = View::Lines;
        for ev in [
            Progress::Planned(2),
            Progress::Started("a create".into()),
            Progress::Waiting("a create".into(), "AWS".into(), Duration::ZERO),
            Progress::Waiting("a create".into(), "AWS".into(), Duration::from_secs(12)),
            Progress::Pending("a create".into(), "still waiting".into()),
        ] {
            view.show(&ev, &mut out);
        }
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        assert_eq!(
            text,
            "  a create: started\n  a create: waiting for AWS\n  a create: still waiting for AWS (12s)\n  a create: pending (still waiting)\n"
        );
    }
}
