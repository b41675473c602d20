"""wam's tests, a package (as is every folder below) so that shared helpers import by their full name:
`from tests.support.pretrain_fixtures import tiny_run`, with no sys.path edits."""
