def pytest_addoption(parser):
    parser.addoption("--alspec-bin", default="build/bin/alspec")
