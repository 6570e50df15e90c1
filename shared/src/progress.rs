//! How a pull or a push looks on stderr, in Docker's words: live per-layer
//! bars on a terminal, one plain line per event in logs, nothing with `-q`.

use crate::digest::Digest;
use crate::output::Progress;
use crate::reference::Reference;
use crate::registry::{
    LayerEvent, PullObserver, Pulled, PushEvent, PushLayer, PushObserver, Pushed, Uploaded,
};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use oci_spec::image::Descriptor;
use std::collections::HashMap;

/// Renders a [`PullObserver`]'s events for a person.
pub struct PullProgress {
    progress: Progress,
    bars: Option<MultiProgress>,
    layers: HashMap<Digest, ProgressBar>,
    default_tag: bool,
}

impl PullProgress {
    pub fn new(progress: Progress) -> PullProgress {
        let bars = progress
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        PullProgress {
            progress,
            bars,
            layers: HashMap::new(),
            default_tag: false,
        }
    }

    /// Says "Using default tag: latest" when the pull starts, as Docker
    /// does for a name given without tag or digest.
    pub fn note_default_tag(mut self, noted: bool) -> PullProgress {
        self.default_tag = noted;
        self
    }

    /// A line that stays above any live bars.
    pub fn line(&self, message: impl std::fmt::Display) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(message.to_string());
            }
            None => self.progress.line(message),
        }
    }

    /// Docker's closing lines for one image: its digest and whether
    /// anything changed.
    pub fn finish(&mut self, pulled: &Pulled) {
        for bar in self.layers.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
        self.layers.clear();
        self.line(format_args!("Digest: {}", pulled.digest));
        let status = if pulled.up_to_date {
            "Image is up to date for"
        } else {
            "Downloaded newer image for"
        };
        self.line(format_args!(
            "Status: {status} {}",
            familiar(&pulled.reference)
        ));
    }

    fn bar(&mut self, layer: &Digest) -> Option<&ProgressBar> {
        self.layers.get(layer)
    }
}

/// Docker's short form of a reference (see [`Reference::familiar`]).
pub fn familiar(reference: &Reference) -> String {
    reference.familiar()
}

fn event_words(event: &LayerEvent) -> String {
    match event {
        LayerEvent::Exists => "Already exists".to_string(),
        LayerEvent::Pulling => "Pulling fs layer".to_string(),
        LayerEvent::Retrying { attempt, reason } => {
            format!("Retrying (attempt {attempt}): {reason}")
        }
        LayerEvent::Verifying => "Verifying Checksum".to_string(),
        LayerEvent::Downloaded => "Download complete".to_string(),
        LayerEvent::Complete => "Pull complete".to_string(),
    }
}

impl PullObserver for PullProgress {
    fn start(&mut self, reference: &Reference) {
        let what = match (reference.digest(), reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_string(),
            (None, None) => "latest".to_string(),
        };
        if self.default_tag {
            self.line("Using default tag: latest");
        }
        self.line(format_args!("{what}: Pulling from {}", reference.path()));
    }

    fn layers(&mut self, layers: &[Descriptor]) {
        let Some(bars) = &self.bars else {
            return;
        };
        let style =
            ProgressStyle::with_template("{prefix}: {msg:<18} [{bar:40}] {bytes}/{total_bytes}")
                .expect("a valid template")
                .progress_chars("=> ");
        for layer in layers {
            let digest = crate::store::descriptor_digest(layer);
            let bar = bars.add(
                ProgressBar::new(layer.size())
                    .with_style(style.clone())
                    .with_prefix(digest.short().to_string()),
            );
            self.layers.insert(digest, bar);
        }
    }

    fn layer(&mut self, layer: &Digest, event: LayerEvent) {
        if self.progress.is_quiet() {
            return;
        }
        let words = event_words(&event);
        let Some(bar) = self.bar(layer) else {
            self.line(format_args!("{}: {words}", layer.short()));
            return;
        };
        match event {
            LayerEvent::Exists | LayerEvent::Complete => bar.finish_with_message(words),
            _ => bar.set_message(words),
        }
    }

    fn progress(&mut self, layer: &Digest, received: u64, total: u64) {
        if let Some(bar) = self.bar(layer) {
            if bar.message() != "Downloading" {
                bar.set_message("Downloading");
            }
            bar.set_length(total);
            bar.set_position(received);
        }
    }
}

/// Renders a [`PushObserver`]'s events for a person.
pub struct PushProgress {
    progress: Progress,
    bars: Option<MultiProgress>,
    layers: HashMap<Digest, ProgressBar>,
}

impl PushProgress {
    pub fn new(progress: Progress) -> PushProgress {
        let bars = progress
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        PushProgress {
            progress,
            bars,
            layers: HashMap::new(),
        }
    }

    fn line(&self, message: impl std::fmt::Display) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(message.to_string());
            }
            None => self.progress.line(message),
        }
    }

    /// Docker's closing line: `<tag>: digest: sha256:… size: N`.
    pub fn finish(&mut self, pushed: &Pushed) {
        for bar in self.layers.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
        self.layers.clear();
        let name = match (pushed.reference.digest(), pushed.reference.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, tag) => tag.unwrap_or("latest").to_string(),
        };
        self.line(format_args!(
            "{name}: digest: {} size: {}",
            pushed.digest, pushed.size
        ));
    }

    fn say(&mut self, layer: &PushLayer, words: &str, done: bool) {
        if self.progress.is_quiet() {
            return;
        }
        match self.layers.get(&layer.digest) {
            Some(bar) if done => bar.finish_with_message(words.to_string()),
            Some(bar) => bar.set_message(words.to_string()),
            None => self.line(format_args!("{}: {words}", layer.short_id())),
        }
    }
}

impl PushObserver for PushProgress {
    fn start(&mut self, repository: &Reference) {
        self.line(format_args!(
            "The push refers to repository [{}]",
            repository.repository()
        ));
    }

    /// Docker lists an image's layers top first.
    fn layers(&mut self, layers: &[PushLayer]) {
        let style =
            ProgressStyle::with_template("{prefix}: {msg:<18} [{bar:40}] {bytes}/{total_bytes}")
                .expect("a valid template")
                .progress_chars("=> ");
        for layer in layers.iter().rev() {
            match &self.bars {
                Some(bars) => {
                    let bar = bars.add(
                        ProgressBar::new(layer.size)
                            .with_style(style.clone())
                            .with_prefix(layer.short_id().to_string())
                            .with_message("Preparing"),
                    );
                    self.layers.insert(layer.digest.clone(), bar);
                }
                None => self.say(layer, "Preparing", false),
            }
        }
    }

    fn layer(&mut self, layer: &PushLayer, event: PushEvent) {
        let (words, done) = match &event {
            PushEvent::Waiting => ("Waiting".to_string(), false),
            PushEvent::Pushing => ("Pushing".to_string(), false),
            PushEvent::Retrying { attempt, reason } => {
                (format!("Retrying (attempt {attempt}): {reason}"), false)
            }
            PushEvent::Done(Uploaded::Exists) => ("Layer already exists".to_string(), true),
            PushEvent::Done(Uploaded::Mounted(from)) => (format!("Mounted from {from}"), true),
            PushEvent::Done(Uploaded::Pushed) => ("Pushed".to_string(), true),
        };
        self.say(layer, &words, done);
    }

    fn progress(&mut self, layer: &PushLayer, sent: u64) {
        if let Some(bar) = self.layers.get(&layer.digest) {
            bar.set_position(sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names_read_like_docker() {
        let r = |s: &str| Reference::parse(s).unwrap();
        assert_eq!(familiar(&r("busybox")), "busybox:latest");
        assert_eq!(familiar(&r("user/app:1")), "user/app:1");
        assert_eq!(familiar(&r("127.0.0.1:5000/x:t")), "127.0.0.1:5000/x:t");
    }
}
