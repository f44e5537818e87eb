mod parsing;
mod table;
