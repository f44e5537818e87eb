//! Server-sent events: an incremental parser of the response body.

use super::MAX_BUFFER;
use super::failure::invalid_response;
use crate::provider::ProviderError;

/// An incremental SSE parser (the `data` field only; `event`, `id`, `retry` are ignored).
#[derive(Default)]
pub(super) struct SseParser {
    /// The incomplete line carried over from the previous chunk.
    line: Vec<u8>,
    /// The data of the event being built.
    data: Vec<u8>,
    /// Whether the event being built has a `data` field.
    has_data: bool,
    /// The previous chunk ended with `\r`: a leading `\n` belongs to that line end.
    skip_lf: bool,
}

type OnEvent<'f> = dyn FnMut(&[u8]) -> Result<(), ProviderError> + 'f;

impl SseParser {
    /// Parses one chunk, calling `on_event` with the data of each complete event.
    pub(super) fn feed(&mut self, mut chunk: &[u8], on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        if std::mem::take(&mut self.skip_lf) && chunk.first() == Some(&b'\n') {
            chunk = &chunk[1..];
        }
        while let Some(end) = chunk.iter().position(|&byte| byte == b'\n' || byte == b'\r') {
            let (line, rest) = chunk.split_at(end);
            let Some((&terminator, mut rest)) = rest.split_first() else {
                break;
            };
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            if self.line.is_empty() {
                self.line_complete(line, on_event)?;
            } else {
                let mut carried = std::mem::take(&mut self.line);
                carried.extend_from_slice(line);
                let result = self.line_complete(&carried, on_event);
                carried.clear();
                self.line = carried;
                result?;
            }
            chunk = rest;
        }
        if self.line.len() + chunk.len() > MAX_BUFFER {
            return Err(invalid_response("an SSE line is too long"));
        }
        self.line.extend_from_slice(chunk);
        Ok(())
    }

    /// Ends the stream: an unterminated last line and event still count.
    pub(super) fn finish(&mut self, on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_complete(&line, on_event)?;
        }
        self.dispatch(on_event)
    }

    fn line_complete(&mut self, line: &[u8], on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        let (field, value) = match line.iter().position(|&byte| byte == b':') {
            None if line.is_empty() => return self.dispatch(on_event),
            None => (line, &[][..]),
            Some(0) => return Ok(()), // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
        };
        if field == b"data" {
            if self.data.len() + value.len() > MAX_BUFFER {
                return Err(invalid_response("an SSE event is too large"));
            }
            if self.has_data {
                self.data.push(b'\n');
            }
            self.data.extend_from_slice(value);
            self.has_data = true;
        }
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut OnEvent<'_>) -> Result<(), ProviderError> {
        if !std::mem::take(&mut self.has_data) {
            return Ok(());
        }
        let result = on_event(&self.data);
        self.data.clear();
        result
    }
}
