//! One line of text typed by a person: the confirm modal's reason, the `/`
//! filter and the `:` command line (and, later, the fields of forms). It
//! keeps the text and a cursor, edits them with the usual keys, caps the
//! length, and refuses control characters, so what is typed can be shown
//! and stored as it is.
//!
//! Editing keys are its own (they are not remappable): characters insert,
//! Backspace and Delete remove, ← → Home End (and Ctrl-a, Ctrl-e) move,
//! Ctrl-u clears what is before the cursor. The keys that close the line
//! (Enter, Esc) come from the keymap of the mode that holds it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::Style;
use ratatui::text::Span;

/// The mark drawn at the cursor.
pub const CURSOR: &str = "▏";

/// A line of text being typed, with a cursor. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextInput {
    /// The characters typed (never a control character).
    chars: Vec<char>,
    /// Position of the cursor, in characters, `0..=chars.len()`.
    cursor: usize,
    /// The most characters it takes.
    max: usize,
}

impl TextInput {
    /// An empty line that takes at most `max` characters.
    pub fn new(max: usize) -> Self {
        TextInput {
            chars: Vec::new(),
            cursor: 0,
            max,
        }
    }

    /// A line holding `text` (its control characters dropped, cut to
    /// `max`), the cursor at its end.
    pub fn with_text(text: &str, max: usize) -> Self {
        let mut input = TextInput::new(max);
        for c in text.chars() {
            input.insert(c);
        }
        input
    }

    /// The text typed.
    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    /// Where the cursor is, in characters from the start.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Inserts `c` at the cursor; refused (false) for a control character
    /// or when the line is full.
    pub fn insert(&mut self, c: char) -> bool {
        if c.is_control() || self.chars.len() >= self.max {
            return false;
        }
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
        true
    }

    /// Removes the character before the cursor.
    pub fn backspace(&mut self) -> bool {
        if self.cursor == 0 {
            return false;
        }
        self.cursor -= 1;
        self.chars.remove(self.cursor);
        true
    }

    /// Removes the character under the cursor.
    pub fn delete(&mut self) -> bool {
        if self.cursor >= self.chars.len() {
            return false;
        }
        self.chars.remove(self.cursor);
        true
    }

    /// Moves the cursor one character left.
    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    /// Moves the cursor one character right.
    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    /// Moves the cursor to the start.
    pub fn home(&mut self) {
        self.cursor = 0;
    }

    /// Moves the cursor to the end.
    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    /// Removes everything before the cursor.
    pub fn clear_before(&mut self) -> bool {
        if self.cursor == 0 {
            return false;
        }
        self.chars.drain(..self.cursor);
        self.cursor = 0;
        true
    }

    /// Applies an editing key; returns whether the text changed. Keys it
    /// does not know (and characters with Ctrl or Alt held) do nothing.
    pub fn edit(&mut self, key: &KeyEvent) -> bool {
        let held = key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let ctrl = held == KeyModifiers::CONTROL;
        match key.code {
            KeyCode::Char(c) if held.is_empty() => self.insert(c),
            KeyCode::Char('a') if ctrl => {
                self.home();
                false
            }
            KeyCode::Char('e') if ctrl => {
                self.end();
                false
            }
            KeyCode::Char('u') if ctrl => self.clear_before(),
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => {
                self.left();
                false
            }
            KeyCode::Right => {
                self.right();
                false
            }
            KeyCode::Home => {
                self.home();
                false
            }
            KeyCode::End => {
                self.end();
                false
            }
            _ => false,
        }
    }

    /// The line as spans, the [`CURSOR`] mark at the cursor in
    /// `cursor_style`: `before▏after`.
    pub fn spans(&self, text_style: Style, cursor_style: Style) -> Vec<Span<'static>> {
        let before: String = self.chars[..self.cursor].iter().collect();
        let after: String = self.chars[self.cursor..].iter().collect();
        vec![
            Span::styled(before, text_style),
            Span::styled(CURSOR, cursor_style),
            Span::styled(after, text_style),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn edits_at_the_cursor() {
        let mut t = TextInput::new(20);
        for c in "wrker".chars() {
            t.insert(c);
        }
        t.home();
        t.right();
        t.insert('o');
        assert_eq!((t.text().as_str(), t.cursor()), ("worker", 2));
        t.end();
        assert!(t.backspace());
        t.left();
        assert!(t.delete());
        assert_eq!(t.text(), "work");
        t.home();
        assert!(!t.backspace(), "nothing before the start");
        t.end();
        assert!(!t.delete(), "nothing after the end");
        t.left();
        assert!(t.edit(&KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL)));
        assert_eq!((t.text().as_str(), t.cursor()), ("k", 0));
    }

    #[test]
    fn refuses_control_characters_and_keeps_its_cap() {
        let mut t = TextInput::new(3);
        assert!(!t.insert('\u{1b}'));
        assert!(!t.insert('\n'));
        assert!(!t.insert('\u{9b}'));
        assert!(t.edit(&key(KeyCode::Char('a'))));
        assert!(!t.edit(&KeyEvent::new(KeyCode::Char('b'), KeyModifiers::ALT)));
        for c in "bcd".chars() {
            t.insert(c);
        }
        assert_eq!(t.text(), "abc");
        assert_eq!(TextInput::with_text("x\u{1b}[2Jy", 10).text(), "x[2Jy");
    }

    #[test]
    fn draws_the_cursor_where_it_is() {
        let mut t = TextInput::with_text("abc", 10);
        t.left();
        let s: String = t
            .spans(Style::new(), Style::new())
            .iter()
            .map(|s| s.content.as_ref())
            .collect();
        assert_eq!(s, "ab▏c");
    }
}
