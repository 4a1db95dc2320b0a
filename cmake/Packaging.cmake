# The Debian packages (CPack): `cmake --build BUILD --target package` in a tree configured with
# -DCMAKE_INSTALL_PREFIX=/usr writes edgeprov_<version>_<arch>.deb (programs, plugins, the
# default site config, the systemd unit) and edgeprov-dev_<version>_<arch>.deb (the SDK).
# Install rules without a COMPONENT belong to "runtime" (CMAKE_INSTALL_DEFAULT_COMPONENT_NAME);
# the SDK's are "dev". What only a system install needs (the unit, /etc/edgeprov/edgeprov.conf,
# the Debian doc files) is EXCLUDE_FROM_ALL, so that `cmake --install BUILD --prefix DIR` never
# writes to /etc: it comes with the packages, or with `cmake --install BUILD --component runtime`.

# Who publishes the packages, named once: the Maintainer field of both packages and the
# changelog's trailer come from EP_PACKAGE_MAINTAINER, the Homepage field (left out when empty)
# from EP_PACKAGE_HOMEPAGE. The project names no real address or site yet: whoever publishes
# packages sets both (-DEP_PACKAGE_MAINTAINER="Name <address>" -DEP_PACKAGE_HOMEPAGE=https://...).
# Licence: none is declared (no LICENSE file, no SPDX headers); packaging/debian/copyright says so.
set(EP_PACKAGE_MAINTAINER "edgeprov maintainers <maintainers@edgeprov.example.org>"
    CACHE STRING "Maintainer field of the Debian packages and their changelog")
set(EP_PACKAGE_HOMEPAGE "" CACHE STRING "Homepage field of the Debian packages (empty: none)")
set(EP_PKG_DIR ${PROJECT_SOURCE_DIR}/packaging)

# The unit: notify when edgeprovd reports readiness through libsystemd (EP_HAVE_SYSTEMD).
if(EP_HAVE_SYSTEMD)
  set(EP_SYSTEMD_SERVICE_TYPE notify)
else()
  set(EP_SYSTEMD_SERVICE_TYPE simple)
endif()
set(EP_SYSTEMD_BINDIR ${CMAKE_INSTALL_FULL_BINDIR})
set(EP_SYSTEMD_DOCDIR ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc/edgeprov)
configure_file(${PROJECT_SOURCE_DIR}/deploy/systemd/edgeprovd.service.in ${PROJECT_BINARY_DIR}/edgeprovd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/edgeprovd.service DESTINATION lib/systemd/system
        COMPONENT runtime EXCLUDE_FROM_ALL)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/edgeprov.sysusers DESTINATION lib/sysusers.d
        RENAME edgeprov.conf COMPONENT runtime EXCLUDE_FROM_ALL)
# The default site config, a conffile (packaging/debian/conffiles). /etc, not <prefix>/etc.
set(EP_CONF_PLUGIN_DIR ${CMAKE_INSTALL_PREFIX}/${EP_PLUGIN_INSTALL_DIR})
configure_file(${EP_PKG_DIR}/edgeprov.conf.in ${PROJECT_BINARY_DIR}/packaging/edgeprov.conf @ONLY)
# A source install (`--component runtime`) never replaces a site config that is there already.
install(CODE "
  if(EXISTS \"\$ENV{DESTDIR}/etc/edgeprov/edgeprov.conf\")
    message(STATUS \"Keeping: \$ENV{DESTDIR}/etc/edgeprov/edgeprov.conf (an existing site config is not replaced)\")
  else()
    file(INSTALL DESTINATION /etc/edgeprov TYPE FILE FILES \"${PROJECT_BINARY_DIR}/packaging/edgeprov.conf\")
  endif()" COMPONENT runtime EXCLUDE_FROM_ALL)

# Each package's /usr/share/doc/<package>: copyright and the (native) changelog, gzip -9n.
configure_file(${EP_PKG_DIR}/debian/changelog.in ${PROJECT_BINARY_DIR}/packaging/changelog @ONLY)
execute_process(COMMAND gzip -9nf ${PROJECT_BINARY_DIR}/packaging/changelog RESULT_VARIABLE ep_gzip_status)
if(NOT ep_gzip_status EQUAL 0)
  message(FATAL_ERROR "gzip of packaging/changelog failed (${ep_gzip_status})")
endif()
foreach(ep_component_package IN ITEMS "runtime;edgeprov" "dev;edgeprov-dev")
  list(GET ep_component_package 0 ep_component)
  list(GET ep_component_package 1 ep_package)
  install(FILES ${EP_PKG_DIR}/debian/copyright ${PROJECT_BINARY_DIR}/packaging/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/${ep_package} COMPONENT ${ep_component} EXCLUDE_FROM_ALL)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/edgeprov
        COMPONENT runtime EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgeprov)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${EP_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime dev)
# Refuses a tree not configured for /usr (the plugins and paths compiled in would be wrong).
set(CPACK_PROJECT_CONFIG_FILE ${EP_PKG_DIR}/cpack-project.cmake)
set(CPACK_EP_CONFIGURED_PREFIX ${CMAKE_INSTALL_PREFIX})

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${EP_PACKAGE_MAINTAINER}")
if(EP_PACKAGE_HOMEPAGE)
  set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${EP_PACKAGE_HOMEPAGE}")
  set(CPACK_PACKAGE_HOMEPAGE_URL "${EP_PACKAGE_HOMEPAGE}")
endif()
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME edgeprov)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION admin)
# Added to what dpkg-shlibdeps computes: postinst creates the system user with adduser.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS adduser)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${EP_PKG_DIR}/debian/conffiles ${EP_PKG_DIR}/debian/postinst ${EP_PKG_DIR}/debian/prerm
    ${EP_PKG_DIR}/debian/postrm)
# The first line is the synopsis (no CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPack would prepend it).
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION "edge node provisioning orchestrator
edgeprovd provisions edge nodes: onboarding, identity, boot artifacts and OS
workflows, each provided by a plugin chosen in the site config
/etc/edgeprov/edgeprov.conf.

This package holds edgeprovd (run by edgeprovd.service as the edgeprov
user), the edgeprov command line tool, the node agent edgeprov-agent, and
the plugins in /usr/lib/edgeprov/plugins.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME edgeprov-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# The kit (libedgeprov-kit.a) links libconfig.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS libconfig-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS edgeprov)
set(CPACK_COMPONENT_DEV_DESCRIPTION "edgeprov plugin SDK
The stable plugin ABI headers of edgeprov, the plugin kit (libedgeprov-kit.a)
for image-based OS plugins, and their pkg-config (edgeprov-sdk, edgeprov-kit)
and CMake (find_package(edgeprov-sdk)) files, for building plugins outside
the edgeprov tree.")
# edgeprov-sdk.pc's Cflags carry -fvisibility=hidden on purpose: a plugin exports its entry only.
install(FILES ${EP_PKG_DIR}/debian/edgeprov-dev.lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
        RENAME edgeprov-dev COMPONENT dev EXCLUDE_FROM_ALL)

include(CPack)
