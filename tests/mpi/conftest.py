def pytest_addoption(parser):
    parser.addoption("--alspec-bin", default="build/bin/alspec")
    parser.addoption("--work-dir", default="build/mpi-work")
