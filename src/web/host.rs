//! The browser's [`Host`] for [`crate::train::run`]: yields to the event loop before every
//! step, waits while paused, stops on request, and hands every event to the page.

use std::cell::Cell;
use std::rc::Rc;

use crate::train::{Event, Host};

/// What the user asked the running training to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Control {
    /// Keep stepping.
    #[default]
    Run,
    /// Wait before the next step.
    Pause,
    /// End the run after the current step (it finishes with `Done { stopped: true }`).
    Stop,
}

/// Shared between the buttons (which set it) and the running task (which reads it).
pub type ControlFlag = Rc<Cell<Control>>;

/// Drives a training run from a `spawn_local` task.
pub struct WebHost<F: FnMut(Event)> {
    control: ControlFlag,
    sink: F,
}

impl<F: FnMut(Event)> WebHost<F> {
    /// `sink` receives every event (the page dispatches them to its reducer).
    pub fn new(control: ControlFlag, sink: F) -> Self {
        Self { control, sink }
    }
}

/// How often a paused run looks at the flag again.
const PAUSE_POLL_MS: u32 = 50;

impl<F: FnMut(Event)> Host for WebHost<F> {
    async fn proceed(&mut self) -> bool {
        loop {
            match self.control.get() {
                Control::Stop => return false,
                Control::Pause => gloo_timers::future::TimeoutFuture::new(PAUSE_POLL_MS).await,
                Control::Run => {
                    super::io::yield_now().await;
                    // The user may have pressed a button during the yield.
                    match self.control.get() {
                        Control::Run => return true,
                        Control::Stop => return false,
                        Control::Pause => {}
                    }
                }
            }
        }
    }

    fn event(&mut self, event: Event) {
        (self.sink)(event);
    }

    fn now_ms(&self) -> f64 {
        super::io::now_ms()
    }
}
