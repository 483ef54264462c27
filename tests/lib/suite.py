"""One test suite kept in several files: the file that CTest and the docs
name (test_cluster.py, test_clients.py, ...) imports the others and calls
combine(), so that running it runs them all, file after file, and a class
of any of them can be named on its command line (-v TestNoQuorum).
"""
import unittest


def combine(namespace, modules):
    """Make the module whose globals() is namespace run the TestCase
    classes of modules: its load_tests() loads them module after module
    (each module's setUpModule/tearDownModule runs once), and each class
    defined in them gets its name in namespace."""
    modules = tuple(modules)
    for m in modules:
        for name, obj in vars(m).items():
            if (isinstance(obj, type) and issubclass(obj, unittest.TestCase)
                    and obj.__module__ == m.__name__):
                if name in namespace and namespace[name] is not obj:
                    raise RuntimeError("two test classes named %s" % name)
                namespace[name] = obj

    def load_tests(loader, tests, pattern):
        return unittest.TestSuite(loader.loadTestsFromModule(m) for m in modules)

    namespace["load_tests"] = load_tests
