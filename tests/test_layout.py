"""The shape of library/: no import circle among its modules (a module's imports inside
functions count too), so that each one can be read, and tested, from its dependencies up; no
function over 80 lines."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imports() -> dict[str, set[str]]:
  """library module -> the library modules it imports, anywhere in it."""
  modules = {}
  for folder, _, files in os.walk(os.path.join(ROOT, 'library')):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
        modules[module.removesuffix('.__init__')] = path
  graph = {}
  for module, path in modules.items():
    with open(path) as f:
      tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('library'):
        found.update({node.module} | {f'{node.module}.{a.name}' for a in node.names})
      elif isinstance(node, ast.Import):
        found.update(a.name for a in node.names)
    graph[module] = (found & set(modules)) - {module}
  return graph


def test_no_import_circle_in_library():
  graph = _imports()
  assert len(graph) > 30 and graph['library.train'] >= {'library.members', 'library.steps'}
  done, on_path = set(), []

  def visit(module):
    if module in on_path:
      raise AssertionError('import circle: ' + ' -> '.join(
          on_path[on_path.index(module):] + [module]))
    if module in done:
      return
    on_path.append(module)
    for imported in sorted(graph[module]):
      visit(imported)
    on_path.pop()
    done.add(module)

  for module in sorted(graph):
    visit(module)


def test_the_config_schema_imports_no_other_library_module():
  """library/config.py finds each section's owner by import path (SECTIONS), as it finds the
  task: the schema sits below every module that reads a config."""
  graph = _imports()
  assert graph['library.config'] <= {'library.errors'}, graph['library.config']


def test_no_library_function_over_80_lines():
  """Each function of library/ readable in one screen: none over 80 lines (nested functions
  count within their parent)."""
  long = []
  for folder, _, files in os.walk(os.path.join(ROOT, 'library')):
    for name in files:
      if name.endswith('.py'):
        path = os.path.join(folder, name)
        with open(path) as f:
          tree = ast.parse(f.read())
        long += [(os.path.relpath(path, ROOT), node.name, node.end_lineno - node.lineno + 1)
                 for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and
                 node.end_lineno - node.lineno + 1 > 80]
  assert not long, long
