"""Build stage: the wrappers compiled (one CMake/Ninja project, abi3, content-addressed) and the locked
wheels installed beside them.
"""
