"""3-D shapes and airfoils under physics rewards (issue 12).

Submodules, imported on use so that ``import domains.shapes`` stays light (aerosandbox, neuralfoil, trimesh and
scikit-image come with the ``shapes`` extra):

- ``sections``: an airfoil section as 18 Kulfan (CST) values, shared by airfoils and wings: NeuralFoil's input
  dict, coordinates, thickness, camber, area, surface crossing, fitting to coordinates.
- ``airfoil_data``: the UIUC database bundled with aerosandbox, fitted to sections (``fit_airfoils`` builds it).
- ``neuralfoil_torch``: NeuralFoil's networks in torch (batched, differentiable), checked against neuralfoil.
- ``airfoils``: the ``Airfoil`` domain (L/D or CD at a required CL, CM, thickness, spar area, no crossing).
- ``airfoil_prior``: the Gaussian diffusion prior over standardized sections (``train_airfoil_prior`` trains it).
- ``loft``: a planform and two sections lofted into a closed mesh; volume, wetted area, mesh checks (watertight,
  winding, self-intersection), STL/GLB export.
- ``wing_aero``: vortex lattice (aerosandbox) + NeuralFoil strips: trimmed cruise, induced and profile drag,
  critical-section maximum lift.
- ``wings``: the ``Wing`` domain (drag, skin mass, fuel volume; span and stall-margin constraints).
- ``render3d``: 3-D views of any triangle mesh to PNG (matplotlib, headless).
- ``corpus``: the project's own 3-D corpus (wings, bodies of revolution, car-like lofts) as 32^3 voxel grids.
- ``voxels``: voxelization and marching cubes back to trimesh meshes.
- ``shape_rewards``, ``shape_metrics``: volume, frontal area, Newtonian + skin-friction drag, watertightness;
  1-NNA, COV and MMD with Chamfer distance.
- ``shape_prior`` / ``train_shape_prior``: the Gaussian diffusion prior over voxel grids; ``shape_domain``:
  the ``Shapes3D`` domain.
"""
