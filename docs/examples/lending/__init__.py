"""A lending library on `repo`: members borrow copies of books, and give them back.

- `lending.tables`: the entities and their `Table` mappings (the schema);
- `lending.repositories`: the repositories and the unit of work;
- `lending.services`: what the library does (lend, return, list, ...);
- `lending.app`: the FastAPI service on top.

The guide page "Your own project" (docs/project.md) walks through it.
"""
