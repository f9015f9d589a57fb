# `cmake --install build --prefix P`: the binaries, the client libraries and their headers, a CMake package
# (find_package(Sotto): Sotto::client_c, the C API's shared library; Sotto::client and Sotto::common, the C++
# static libraries, with their transitive dependencies) and a pkg-config file for the C API (sotto-client.pc).
#
#   P/bin/                 sotto-aggregator, sotto-client, sotto-dp, sotto-sim
#   P/lib/                 libsotto_client.so.0 (+ links), the static libraries
#   P/lib/sotto/           libsotto_torch_runtime.so, the LibTorch module the binaries load when they need a model
#   P/include/sotto/       sotto_client.h (the C API); client/, common/ and sotto/v1/ (the C++ API's headers)
#   P/lib/cmake/Sotto/     SottoConfig.cmake, SottoTargets.cmake, SottoConfigVersion.cmake
#   P/lib/pkgconfig/       sotto-client.pc
#   P/lib/systemd/system/  sotto-aggregator.service (the daemon's unit; the .deb's postinst adds its user)
#   P/share/doc/sotto/examples/aggregator.toml   the config the unit expects in /etc/sotto/
include(GNUInstallDirs)
# Installing and packaging take what was built: they never start a build themselves (the install tests run from
# ctest on a built tree).
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY TRUE)
include(CMakePackageConfigHelpers)

set(SOTTO_LIBRARY_TARGETS sotto_proto sotto_wire sotto_common sotto_crypto sotto_secagg sotto_dp sotto_round
                          sotto_client sotto_client_shared)
foreach(target proto wire common crypto secagg dp round client)
  set_target_properties(sotto_${target} PROPERTIES EXPORT_NAME ${target})
endforeach()
set_target_properties(sotto_client_shared PROPERTIES EXPORT_NAME client_c)
target_include_directories(sotto_client_shared PUBLIC $<INSTALL_INTERFACE:include>)

install(TARGETS sotto-aggregator sotto-client sotto-dp sotto-sim COMPONENT daemon
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS sotto_torch_runtime COMPONENT daemon LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/sotto)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/systemd/sotto-aggregator.service COMPONENT daemon
        DESTINATION lib/systemd/system)
install(FILES ${CMAKE_SOURCE_DIR}/packaging/aggregator.example.toml COMPONENT daemon
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/sotto/examples RENAME aggregator.toml)
install(TARGETS ${SOTTO_LIBRARY_TARGETS} EXPORT SottoTargets COMPONENT client
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_SOURCE_DIR}/client/include/sotto/sotto_client.h COMPONENT client DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sotto)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/client/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sotto/client COMPONENT client
        FILES_MATCHING PATTERN "*.h" PATTERN "include" EXCLUDE)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/common/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sotto/common COMPONENT client
        FILES_MATCHING PATTERN "*.h")
install(FILES ${SOTTO_GEN_DIR}/sotto/v1/sotto.pb.h COMPONENT client
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sotto/sotto/v1)

set(SOTTO_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Sotto)
install(EXPORT SottoTargets NAMESPACE Sotto:: DESTINATION ${SOTTO_CMAKE_DIR} COMPONENT client)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/SottoConfig.cmake.in
                              ${CMAKE_BINARY_DIR}/SottoConfig.cmake INSTALL_DESTINATION ${SOTTO_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/SottoConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/SottoConfig.cmake ${CMAKE_BINARY_DIR}/SottoConfigVersion.cmake
        DESTINATION ${SOTTO_CMAKE_DIR} COMPONENT client)

# Relocatable: the prefix is found from the .pc file's own place (an unpacked .deb, a temporary prefix).
file(RELATIVE_PATH SOTTO_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
configure_file(${CMAKE_CURRENT_LIST_DIR}/sotto-client.pc.in ${CMAKE_BINARY_DIR}/sotto-client.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/sotto-client.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT client)

# `cpack --config build/CPackConfig.cmake`: one .deb per component — libsotto-client (the client libraries, their
# headers, the CMake package and pkg-config file) and sotto (the binaries and the LibTorch module; the operations
# issue's daemon package adds its service files to this component).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sotto)
set(CPACK_PACKAGE_VENDOR "Sotto")
set(CPACK_PACKAGE_CONTACT "Sotto developers <sotto@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Federated on-device learning with secure aggregation and differential privacy")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL client daemon)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_CLIENT_PACKAGE_NAME libsotto-client)
set(CPACK_DEBIAN_CLIENT_PACKAGE_SECTION libdevel)
# What the C++ static libraries' headers and find_package(Sotto) need on the developer's machine.
set(CPACK_DEBIAN_CLIENT_PACKAGE_DEPENDS
    "libssl-dev, libprotobuf-dev, libboost-dev, libspdlog-dev, libtomlplusplus-dev, nlohmann-json3-dev, zlib1g-dev")
set(CPACK_DEBIAN_DAEMON_PACKAGE_NAME sotto)
set(CPACK_DEBIAN_DAEMON_PACKAGE_SECTION net)
set(CPACK_DEBIAN_DAEMON_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/packaging/debian/postinst)
set(CPACK_DEBIAN_DAEMON_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_COMPONENT_CLIENT_DESCRIPTION "Sotto client library: the C API (libsotto_client.so) and the C++ API")
set(CPACK_COMPONENT_DAEMON_DESCRIPTION
    "Sotto binaries: sotto-aggregator (with its systemd unit), sotto-client, sotto-dp, sotto-sim")
include(CPack)
